// example-tensor-parallel: give each tensor-parallel rank its part of every weight.
//
// A tensor-parallel loader runs once per rank (one process per GPU); each reads only its part
// of each weight: tensor_view::split(dim, rank, world_size) is that part, split the way
// vLLM and Megatron-LM split (equal parts when the size divides; otherwise the first
// size % world_size ranks get one row more, as DeepSpeed does). Here all ranks run in one
// process, one after the other: each gets owned copies of its parts, then the parts are
// put back together and compared with the file's tensors byte for byte.
//
// Every tensor is split along one dimension (--dim, default 0; negative counts from the end).
// Real loaders choose per layer (column-parallel weights along the output dimension,
// row-parallel ones along the input); scalars, and tensors too small to have that dimension,
// are replicated on every rank.
//
// usage: example-tensor-parallel [--world N] [--dim D] [FILE]
//   N defaults to 3 (so the 32-wide tensors of the default file split unevenly: 11, 11, 10);
//   FILE defaults to tests/data/reference/model/gpt2_tiny/model.safetensors (run it from the
//   repository root).
#include <safetensors/safetensors.hpp>

#include <cstdio>
#include <cstring>
#include <exception>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace st = safetensors;

namespace {

const char default_path[] = "tests/data/reference/model/gpt2_tiny/model.safetensors";

std::string shape_text(st::span<const std::uint64_t> shape) {
    std::string out = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
    return out + "]";
}

// The dimension a tensor is split along, or none (replicated).
std::optional<std::size_t> split_axis(const st::tensor_view& view, long long dim) {
    const auto rank = static_cast<long long>(view.rank());
    if (dim < -rank || dim >= rank) return std::nullopt;
    return static_cast<std::size_t>(dim < 0 ? dim + rank : dim);
}

// What one rank holds: its part of each tensor, owned.
using rank_weights = std::map<std::string, st::tensor, std::less<>>;

rank_weights load_rank(const st::file& f, long long dim, std::uint64_t rank, std::uint64_t world) {
    rank_weights out;
    for (const st::tensor_view& view : f) {
        const auto axis = split_axis(view, dim);
        st::tensor_slice part = axis ? view.split(static_cast<std::int64_t>(*axis), rank, world) : view.slice(st::slice_spec{});
        out.emplace(std::string(view.name()), part.to_tensor());
    }
    return out;
}

// Puts the parts of one tensor back together along axis and compares with the file.
void check_reassembly(const st::tensor_view& view, const std::vector<rank_weights>& ranks, long long dim) {
    const auto axis = split_axis(view, dim);
    std::vector<unsigned char> rebuilt(static_cast<std::size_t>(view.byte_size()));
    if (!axis) {  // replicated: every rank has all of it
        for (const auto& weights : ranks) {
            const st::tensor& t = weights.find(view.name())->second;
            if (t.byte_size() != 0) std::memcpy(rebuilt.data(), t.data(), static_cast<std::size_t>(t.byte_size()));
        }
    } else {
        // The tensor is `outer` blocks (positions of the dimensions before axis); in each, the
        // ranks' parts follow one another in rank order.
        std::uint64_t outer = 1;
        for (std::size_t d = 0; d < *axis; ++d) outer *= view.shape()[d];
        const std::uint64_t block = outer == 0 ? 0 : view.byte_size() / outer;
        std::uint64_t at = 0;  // where this rank's part starts in each block
        for (const auto& weights : ranks) {
            const st::tensor& t = weights.find(view.name())->second;
            const std::uint64_t part = outer == 0 ? 0 : t.byte_size() / outer;
            for (std::uint64_t o = 0; o < outer && part != 0; ++o)
                std::memcpy(rebuilt.data() + o * block + at, t.data() + o * part, static_cast<std::size_t>(part));
            at += part;
        }
    }
    if (view.byte_size() != 0 && std::memcmp(rebuilt.data(), view.data(), rebuilt.size()) != 0)
        throw st::error(st::errc::io_error, "the parts of " + st::detail::quote(view.name()) + " do not reassemble it");
}

} // namespace

int main(int argc, char** argv) {
    try {
        std::uint64_t world = 3;
        long long dim = 0;
        std::string path = default_path;
        for (int i = 1; i < argc; ++i) {
            const std::string arg = argv[i];
            if (arg == "--world" && i + 1 < argc) {
                world = std::stoull(argv[++i]);
            } else if (arg == "--dim" && i + 1 < argc) {
                dim = std::stoll(argv[++i]);
            } else if (!arg.empty() && arg[0] != '-') {
                path = arg;
            } else {
                std::fprintf(stderr, "error: usage: %s [--world N] [--dim D] [FILE]\n", argv[0]);
                return 1;
            }
        }

        if (world == 0) throw st::error(st::errc::invalid_argument, "--world must be at least 1");
        const st::file f = st::open(path);
        std::vector<rank_weights> ranks;
        for (std::uint64_t rank = 0; rank < world; ++rank) ranks.push_back(load_rank(f, dim, rank, world));

        std::printf("%zu tensors, world size %llu, split along dimension %lld\n\n", f.size(),
                    static_cast<unsigned long long>(world), dim);
        for (const st::tensor_view& view : f) {
            std::printf("%-36s %s", st::detail::quote(view.name()).c_str(), shape_text(view.shape()).c_str());
            if (!split_axis(view, dim)) std::printf("  (replicated)");
            std::printf("\n   ");
            for (const auto& weights : ranks) std::printf(" %s", shape_text(weights.find(view.name())->second.shape()).c_str());
            std::printf("\n");
        }
        std::uint64_t total = 0;
        for (const st::tensor_view& view : f) total += view.byte_size();
        std::printf("\n");
        for (std::uint64_t rank = 0; rank < world; ++rank) {
            std::uint64_t bytes = 0;
            for (const auto& [name, t] : ranks[rank]) bytes += t.byte_size();
            std::printf("rank %llu: %zu tensors, %llu of %llu bytes\n", static_cast<unsigned long long>(rank),
                        ranks[rank].size(), static_cast<unsigned long long>(bytes), static_cast<unsigned long long>(total));
        }

        for (const st::tensor_view& view : f) check_reassembly(view, ranks, dim);
        std::printf("\nthe parts of all %zu tensors reassemble them exactly\n", f.size());
        return 0;
    } catch (const st::error& e) {
        std::fprintf(stderr, "error: %s\n", e.message().c_str());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
    }
    return 1;
}
