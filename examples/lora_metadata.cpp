// example-lora-metadata: read the training metadata of a LoRA file.
//
// LoRA trainers (kohya-ss sd-scripts and others) store their settings in the header's
// __metadata__, a string-to-string map: Python's `safe_open(p).metadata()`. Plain settings
// are strings ("ss_network_dim": "4"); structured ones are JSON documents inside strings
// ("ss_tag_frequency": "{\"dir\": {\"tag\": 3}}"). This example prints every key, then
// parses the JSON ones with nlohmann::json and shows the network settings and the most
// frequent training tags.
//
// usage: example-lora-metadata [FILE]
//   FILE defaults to the bundled fixture tests/data/reference/valid/lora_metadata.safetensors
//   (relative to the repository root, so run it from there).
#include <safetensors/safetensors.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace st = safetensors;

namespace {

const char default_path[] = "tests/data/reference/valid/lora_metadata.safetensors";

// Keys and values come from an untrusted file: quote() escapes control characters and
// cuts long values to about 200 bytes.
std::string printable(std::string_view text) { return st::detail::quote(text); }

// Deepest nesting of [ and { outside strings, for refusing absurd documents cheaply.
std::size_t nesting_depth(std::string_view text) {
    std::size_t depth = 0, deepest = 0;
    bool in_string = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (in_string) {
            if (c == '\\') ++i;
            else if (c == '"') in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            deepest = std::max(deepest, ++depth);
        } else if ((c == ']' || c == '}') && depth > 0) {
            --depth;
        }
    }
    return deepest;
}

// A metadata value that holds a JSON object or array, parsed; nullopt for anything else.
std::optional<nlohmann::json> parse_json_value(std::string_view value) {
    if (value.empty() || (value.front() != '{' && value.front() != '[')) return std::nullopt;
    if (nesting_depth(value) > 64) return std::nullopt;
    auto parsed = nlohmann::json::parse(value.begin(), value.end(), nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) return std::nullopt;
    return parsed;
}

} // namespace

int main(int argc, char** argv) {
    if (argc > 2) {
        std::fprintf(stderr, "error: usage: %s [FILE]\n", argv[0]);
        return 1;
    }
    const std::string path = argc == 2 ? argv[1] : default_path;
    try {
        st::file f = st::open(path);
        std::printf("%s: %zu tensors\n", printable(path).c_str(), f.size());

        // f.metadata() is null when the header has no __metadata__.
        const st::metadata_map* metadata = f.metadata();
        if (!metadata || metadata->empty()) {
            std::printf("no metadata\n");
            return 0;
        }

        // 1. Every key and value, in header order; JSON values are only summarized here.
        std::printf("\nmetadata (%zu keys):\n", metadata->size());
        for (const auto& [key, value] : *metadata) {
            if (auto json = parse_json_value(value))
                std::printf("  %s = JSON %s with %zu entries\n", printable(key).c_str(),
                            json->is_object() ? "object" : "array", json->size());
            else
                std::printf("  %s = %s\n", printable(key).c_str(), printable(value).c_str());
        }

        // 2. Network settings: numbers stored as strings (find() gives a string_view).
        std::printf("\nnetwork:\n");
        int shown = 0;
        for (const char* key : {"ss_network_module", "ss_network_dim", "ss_network_alpha", "ss_output_name"})
            if (auto value = metadata->find(key)) {
                std::printf("  %s: %s\n", key, printable(*value).c_str());
                ++shown;
            }
        if (shown == 0) std::printf("  (no ss_network_* keys: not a kohya-style LoRA file)\n");
        // The LoRA update is scaled by alpha / dim at inference time.
        auto dim = metadata->find("ss_network_dim"), alpha = metadata->find("ss_network_alpha");
        if (dim && alpha) {
            auto number = [](std::string_view text) -> std::optional<double> {
                if (auto json = nlohmann::json::parse(text.begin(), text.end(), nullptr, false); json.is_number())
                    return json.get<double>();
                return std::nullopt;
            };
            auto d = number(*dim), a = number(*alpha);
            if (d && a && *d != 0) std::printf("  scale (alpha / dim): %g\n", *a / *d);
        }

        // 3. ss_tag_frequency: {"<dataset dir>": {"<tag>": count, ...}, ...}. Sum the counts
        //    over all directories and show the ten most frequent tags.
        if (auto text = metadata->find("ss_tag_frequency")) {
            auto json = parse_json_value(*text);
            if (!json || !json->is_object()) throw st::error(st::errc::invalid_metadata, "ss_tag_frequency is not a JSON object");
            std::map<std::string, double> totals;
            for (const auto& [directory, tags] : json->items()) {
                if (!tags.is_object()) continue;
                for (const auto& [tag, count] : tags.items())
                    if (count.is_number()) totals[tag] += count.get<double>();
            }
            std::vector<std::pair<std::string, double>> ranked(totals.begin(), totals.end());
            std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
                return a.second != b.second ? a.second > b.second : a.first < b.first;
            });
            if (ranked.size() > 10) ranked.resize(10);
            std::printf("\ntop tags (%zu distinct, over %zu dataset directories):\n", totals.size(), json->size());
            for (const auto& [tag, count] : ranked) std::printf("  %6g  %s\n", count, printable(tag).c_str());
        }

        // 4. ss_dataset_dirs: {"<dir>": {"n_repeats": N, "img_count": M}, ...}.
        if (auto text = metadata->find("ss_dataset_dirs")) {
            auto json = parse_json_value(*text);
            if (json && json->is_object()) {
                std::printf("\ndataset directories:\n");
                for (const auto& [directory, info] : json->items()) {
                    std::printf("  %s", printable(directory).c_str());
                    if (info.is_object())
                        for (const char* field : {"img_count", "n_repeats"})
                            if (info.contains(field) && info[field].is_number_integer())
                                std::printf(", %s %lld", field, info[field].get<long long>());
                    std::printf("\n");
                }
            }
        }
        return 0;
    } catch (const st::error& e) {
        std::fprintf(stderr, "error: %s\n", e.message().c_str());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
    }
    return 1;
}
