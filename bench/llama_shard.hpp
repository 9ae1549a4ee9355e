// The benchmark shard: one shard of a real checkpoint, laid out like a Llama shard (280 BF16
// tensors named model.layers.N.*, {"format": "pt"} metadata, a 32 KB header, about 1 GiB of
// data). Used by bench_open_shard.cpp and first_open.cpp.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace bench {

// The tensors of a 31-layer Llama-style model with hidden size 1024 and MLP size 4096 plus the
// embedding: 280 tensors, about 1 GiB as BF16.
inline std::vector<std::pair<std::string, std::vector<std::uint64_t>>> llama_shard_tensors() {
    constexpr std::uint64_t hidden = 1024, mlp = 4096, vocab = 32000, layers = 31;
    std::vector<std::pair<std::string, std::vector<std::uint64_t>>> out;
    out.push_back({"model.embed_tokens.weight", {vocab, hidden}});
    for (std::uint64_t l = 0; l < layers; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        for (const char* proj : {"q_proj", "k_proj", "v_proj", "o_proj"})
            out.push_back({p + "self_attn." + proj + ".weight", {hidden, hidden}});
        out.push_back({p + "mlp.gate_proj.weight", {mlp, hidden}});
        out.push_back({p + "mlp.up_proj.weight", {mlp, hidden}});
        out.push_back({p + "mlp.down_proj.weight", {hidden, mlp}});
        out.push_back({p + "input_layernorm.weight", {hidden}});
        out.push_back({p + "post_attention_layernorm.weight", {hidden}});
    }
    return out;
}

// The shard's header as the reference writer lays it out: __metadata__ first, tensors in
// bytewise name order (all one dtype) with consecutive data_offsets, padded to 8 bytes.
inline std::string llama_shard_header(std::uint64_t& data_size) {
    auto tensors = llama_shard_tensors();
    std::sort(tensors.begin(), tensors.end());
    std::string header = "{\"__metadata__\":{\"format\":\"pt\"}";
    data_size = 0;
    for (const auto& [name, shape] : tensors) {
        std::uint64_t bytes = 2;
        std::string dims;
        for (std::uint64_t d : shape) {
            bytes *= d;
            dims += (dims.empty() ? "" : ",") + std::to_string(d);
        }
        header += ",\"" + name + "\":{\"dtype\":\"BF16\",\"shape\":[" + dims + "],\"data_offsets\":[" +
                  std::to_string(data_size) + "," + std::to_string(data_size + bytes) + "]}";
        data_size += bytes;
    }
    header += '}';
    header.append((8 - header.size() % 8) % 8, ' ');
    return header;
}

// Writes the shard to path: the header, then a hole for the data (opening never reads tensor
// bytes, and a sparse file costs no disk). Returns the header's size.
inline std::size_t write_llama_shard(const std::string& path) {
    std::uint64_t data_size = 0;
    const std::string header = llama_shard_header(data_size);
    std::string bytes(8, '\0');
    for (int i = 0; i < 8; ++i) bytes[static_cast<std::size_t>(i)] = static_cast<char>(header.size() >> (8 * i));
    bytes += header;
    std::FILE* out = std::fopen(path.c_str(), "wb");
    const bool written = out && std::fwrite(bytes.data(), 1, bytes.size(), out) == bytes.size();
    if (out && std::fclose(out) != 0) throw std::runtime_error("cannot write " + path);
    if (!written) throw std::runtime_error("cannot write " + path);
    std::filesystem::resize_file(path, bytes.size() + data_size);
    return header.size();
}

} // namespace bench
