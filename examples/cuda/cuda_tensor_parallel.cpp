// example-cuda-tensor-parallel: tensor-parallel loading. Rank r of WORLD gets, on its own
// device, split(dim, r, WORLD) of every matrix and a copy of every other tensor:
//
//   * 2-D tensors alternate between dim 0 (row shards: one contiguous range of the file,
//     Megatron-LM's column-parallel layers) and dim 1 (column shards: one run per row,
//     its row-parallel layers);
//   * everything else (norms, biases) is replicated.
//
// Only each rank's bytes are read and moved. In a real job every rank is its own process and
// calls load_file_parts() once with its rank; this example plays all ranks in turn, each on
// device rank % (number of devices), and checks one shard per rank against the host's.
//
// usage: example-cuda-tensor-parallel FILE [WORLD]   (WORLD defaults to 2)
#include <safetensors/cuda.hpp>
#include <safetensors/safetensors.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace st = safetensors;

int main(int argc, char** argv) {
    if (argc < 2 || argc > 3) {
        std::fprintf(stderr, "error: usage: %s FILE [WORLD]\n", argc > 0 ? argv[0] : "example-cuda-tensor-parallel");
        return 1;
    }
    const std::string path = argv[1];
    const long world = argc == 3 ? std::atol(argv[2]) : 2;
    if (world < 1) {
        std::fprintf(stderr, "error: WORLD must be at least 1\n");
        return 1;
    }
    try {
        int devices = 0;
        st::cuda::check(cudaGetDeviceCount(&devices), "cudaGetDeviceCount");

        const st::file f = st::open(path);
        std::vector<st::cuda::split_request> plan;
        int matrices = 0;
        for (const auto& v : f) {
            if (v.rank() == 2)
                plan.push_back({std::string(v.name()), matrices++ % 2});
            else
                plan.push_back({std::string(v.name()), std::nullopt});
        }

        std::map<int, std::unique_ptr<st::cuda::loader>> loaders;  // one per device, reused
        bool all_match = true;
        for (long rank = 0; rank < world; ++rank) {
            const int device = static_cast<int>(rank % devices);
            auto& gpu = loaders[device];
            if (!gpu) gpu = std::make_unique<st::cuda::loader>(device);

            const auto start = std::chrono::steady_clock::now();
            const st::device_tensor_map mine = gpu->load_file_parts(path, plan, static_cast<std::uint64_t>(rank),
                                                                     static_cast<std::uint64_t>(world));
            const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            const st::cuda::load_stats s = gpu->last_stats();
            std::printf("rank %ld on cuda:%d: %zu tensors, %.3f MB in %.1f ms (%.2f GB/s), %zu reads, %zu copies\n",
                        rank, device, mine.size(), static_cast<double>(s.bytes) / 1e6, seconds * 1e3,
                        seconds > 0 ? static_cast<double>(s.bytes) / seconds / 1e9 : 0.0, s.reads, s.copies);

            // Check the first sharded tensor against the host's shard of it.
            for (const auto& request : plan) {
                if (!request.dim) continue;
                const st::tensor_slice host = f.tensor(request.name).split(*request.dim, static_cast<std::uint64_t>(rank),
                                                                           static_cast<std::uint64_t>(world));
                const st::device_tensor& d = mine.at(request.name);
                std::vector<std::byte> expected(static_cast<std::size_t>(host.byte_size())), got(expected.size());
                host.copy_to(expected.data(), expected.size());
                st::cuda::device_scope on(device);
                if (!got.empty())
                    st::cuda::check(cudaMemcpy(got.data(), d.data, got.size(), cudaMemcpyDeviceToHost), "cudaMemcpy");
                const bool same = got == expected;
                all_match = all_match && same;
                std::string shape;
                for (auto n : d.shape) shape += (shape.empty() ? "" : ", ") + std::to_string(n);
                std::printf("  %s dim %lld -> [%s] %s\n", st::detail::quote(request.name).c_str(),
                            static_cast<long long>(*request.dim), shape.c_str(), same ? "matches the host shard" : "MISMATCH");
                break;
            }
        }
        return all_match ? 0 : 1;
    } catch (const st::error& e) {
        std::fprintf(stderr, "error: %s\n", e.message().c_str());
        return 1;
    }
}
