// example-load-sharded: open a sharded checkpoint (a folder holding model.safetensors.index.json,
// or the index itself) as one collection, list its tensors and shards, read a few values, and
// take this rank's tensor-parallel part of one weight.
//
//   example-load-sharded [FOLDER-OR-INDEX [NAME]]
//
// Defaults to the bundled fixture tests/data/reference/model/gpt2_tiny_sharded (run it from
// the repository root) and its token embedding, transformer.wte.weight.
#include <safetensors/safetensors.hpp>
#include <safetensors/sharded.hpp>

#include <cstdio>
#include <exception>
#include <string>

namespace st = safetensors;

int main(int argc, char** argv) {
    try {
        const std::string path = argc > 1 ? argv[1] : "tests/data/reference/model/gpt2_tiny_sharded";
        const std::string name = argc > 2 ? argv[2] : "transformer.wte.weight";

        // Reads and checks the index only; each shard is opened (mapped) on first use.
        const st::sharded_file model = st::open_sharded(path);
        // Optional: open every shard now and check shards and index agree.
        model.validate();

        std::printf("%zu tensors in %zu shards", model.size(), model.shard_count());
        if (auto total = model.total_size()) std::printf(", total_size %llu bytes", static_cast<unsigned long long>(*total));
        std::printf("\n");
        for (std::size_t s = 0; s < model.shard_count(); ++s)
            std::printf("  %s: %zu tensors\n", model.shard_names()[s].c_str(), model.shard(s).size());

        // Python's keys() order; each view points into its shard's mapping.
        for (auto key : model.sorted_keys()) {
            const st::tensor_view t = model.tensor(key);
            std::printf("%-40.*s %-5s %10llu bytes  [%s]  first %g\n", static_cast<int>(key.size()), key.data(),
                        std::string(st::to_string(t.dtype())).c_str(), static_cast<unsigned long long>(t.byte_size()),
                        model.shard_name_of(key).c_str(), t.element_count() ? t.element(0) : 0.0);
        }

        // Views of a sharded checkpoint slice like any other: rank 1 of 4 along dimension 0.
        const st::tensor_view weight = model.tensor(name);
        const st::tensor part = weight.split(0, 1, 4).to_tensor();
        std::printf("rank 1 of 4 of %s: %llu of %llu bytes, shape [", name.c_str(),
                    static_cast<unsigned long long>(part.byte_size()), static_cast<unsigned long long>(weight.byte_size()));
        for (std::size_t d = 0; d < part.rank(); ++d) std::printf(d ? ", %llu" : "%llu", static_cast<unsigned long long>(part.shape()[d]));
        std::printf("]\n");
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
