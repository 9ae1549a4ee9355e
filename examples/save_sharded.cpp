// example-save-sharded: split a file's tensors into shards the way transformers'
// save_pretrained(max_shard_size=...) does, writing model-0000K-of-0000N.safetensors and
// model.safetensors.index.json, then read the result back and compare every tensor.
//
//   example-save-sharded [IN [OUT-FOLDER [MAX-SHARD-BYTES]]]
//
// Defaults: tests/data/reference/model/gpt2_tiny/model.safetensors (run from the repository
// root), the folder "sharded" (created beforehand by you; it must exist), 40000 bytes
// (transformers' "40KB"). Tensors are split in the order of IN's file; transformers walks the
// model's state_dict order instead, so the split can differ from its own.
#include <safetensors/safetensors.hpp>
#include <safetensors/sharded.hpp>
#include <safetensors/sharded_writer.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

namespace st = safetensors;

int main(int argc, char** argv) {
    try {
        const std::string in = argc > 1 ? argv[1] : "tests/data/reference/model/gpt2_tiny/model.safetensors";
        const std::string out = argc > 2 ? argv[2] : "sharded";
        const auto f = st::open(in);

        st::sharded_write_options options;
        options.max_shard_size = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 40'000;
        options.index_metadata = {{"source", in}};  // extra keys beside total_size
        std::vector<st::tensor_ref> tensors(f.begin(), f.end());  // views: the data is not copied
        const st::sharded_write_result written = st::save_sharded(out, tensors, options);

        for (const auto& shard : written.shard_files) std::printf("wrote %s\n", shard.c_str());
        if (!written.index_file.empty()) std::printf("wrote %s\n", written.index_file.c_str());
        std::printf("total_size %llu bytes, %llu parameters\n", static_cast<unsigned long long>(written.total_size),
                    static_cast<unsigned long long>(written.total_parameters));

        const st::sharded_file back = st::open_sharded(out);
        back.validate();
        for (const st::tensor_view& t : f) {
            const st::tensor_view u = back.tensor(t.name());
            if (u.byte_size() != t.byte_size() || std::memcmp(u.data(), t.data(), t.byte_size()) != 0) {
                std::fprintf(stderr, "error: tensor %s differs after the round trip\n", std::string(t.name()).c_str());
                return 1;
            }
        }
        std::printf("read back %zu tensors from %zu shards: identical\n", back.size(), back.shard_count());
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
