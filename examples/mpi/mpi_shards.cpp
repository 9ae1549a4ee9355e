// example-mpi-shards: tensor-parallel loading of a sharded checkpoint across MPI ranks.
//
//   mpirun -np 4 example-mpi-shards CHECKPOINT [REFERENCE.safetensors]
//
// Every rank opens the checkpoint (an index file, a folder, or one .safetensors file) and
// reads only its part of every weight: split(dim, rank, world) along the last dimension for
// matrices (as a row-parallel linear layer takes it) and along the first for vectors. Rank 0
// then gathers the parts, puts each tensor back together and checks it against the tensor
// in REFERENCE (an unsharded copy of the model) or, without one, in the checkpoint itself.
// It also checks that the ranks together read each byte exactly once.
//
// The loading loop is the same under any launcher: with torchrun or an NCCL engine, rank and
// world size come from RANK / WORLD_SIZE (or the engine's process group) instead of MPI.
#include <safetensors/sharded.hpp>
#include <safetensors/safetensors.hpp>

#include <mpi.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

namespace st = safetensors;

namespace {

// The dimension this example splits: the last for matrices and up, the first for vectors,
// none (-1 meaning "rank 0 takes it all") for scalars.
std::int64_t split_dimension(const st::tensor_view& view) {
    if (view.rank() == 0) return -1;
    return view.rank() >= 2 ? static_cast<std::int64_t>(view.rank()) - 1 : 0;
}

std::vector<std::byte> raw_bytes(const st::tensor_view& view) {
    const auto bytes = view.bytes();
    return {bytes.begin(), bytes.end()};
}

// This rank's bytes of view.
std::vector<std::byte> my_part(const st::tensor_view& view, int rank, int world) {
    const std::int64_t dim = split_dimension(view);
    if (dim < 0) {
        if (rank != 0) return {};
        return raw_bytes(view);
    }
    st::tensor_slice part = view.split(dim, static_cast<std::uint64_t>(rank), static_cast<std::uint64_t>(world));
    std::vector<std::byte> bytes(static_cast<std::size_t>(part.byte_size()));
    part.copy_to(bytes.data(), bytes.size());
    return bytes;
}

// Puts the ranks' parts of a tensor split along dim back together. Each part is `outer`
// rows (the product of the dimensions before dim) of part_bytes / outer bytes each.
std::vector<std::byte> reassemble(const st::tensor_view& view, const std::vector<std::vector<std::byte>>& parts) {
    const std::int64_t dim = split_dimension(view);
    if (dim < 0) return parts[0];
    std::uint64_t outer = 1;
    for (std::int64_t d = 0; d < dim; ++d) outer *= view.shape()[static_cast<std::size_t>(d)];
    std::vector<std::byte> whole(static_cast<std::size_t>(view.byte_size()));
    if (outer == 0 || whole.empty()) return whole;
    const std::size_t row = whole.size() / outer;
    std::size_t column = 0;
    for (const auto& part : parts) {
        const std::size_t piece = part.size() / outer;
        for (std::uint64_t o = 0; o < outer; ++o)
            std::memcpy(whole.data() + o * row + column, part.data() + o * piece, piece);
        column += piece;
    }
    return whole;
}

// Gathers every rank's bytes on rank 0 (other ranks get an empty list).
std::vector<std::vector<std::byte>> gather(const std::vector<std::byte>& mine, int rank, int world) {
    long long size = static_cast<long long>(mine.size());
    std::vector<long long> sizes(static_cast<std::size_t>(world));
    MPI_Gather(&size, 1, MPI_LONG_LONG, sizes.data(), 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD);
    std::vector<int> counts(static_cast<std::size_t>(world)), displacements(static_cast<std::size_t>(world));
    std::vector<std::byte> all;
    if (rank == 0) {
        long long total = 0;
        for (int r = 0; r < world; ++r) {
            counts[static_cast<std::size_t>(r)] = static_cast<int>(sizes[static_cast<std::size_t>(r)]);
            displacements[static_cast<std::size_t>(r)] = static_cast<int>(total);
            total += sizes[static_cast<std::size_t>(r)];
        }
        all.resize(static_cast<std::size_t>(total));
    }
    MPI_Gatherv(mine.data(), static_cast<int>(mine.size()), MPI_BYTE, all.data(), counts.data(), displacements.data(),
                MPI_BYTE, 0, MPI_COMM_WORLD);
    std::vector<std::vector<std::byte>> parts;
    if (rank == 0)
        for (int r = 0; r < world; ++r) {
            auto begin = all.begin() + displacements[static_cast<std::size_t>(r)];
            parts.emplace_back(begin, begin + counts[static_cast<std::size_t>(r)]);
        }
    return parts;
}

int run(int argc, char** argv, int rank, int world) {
    if (argc < 2) {
        if (rank == 0) std::fprintf(stderr, "usage: %s CHECKPOINT [REFERENCE.safetensors]\n", argv[0]);
        return 2;
    }
    const auto checkpoint = st::sharded_file::open(argv[1]);
    std::uint64_t read_here = 0, total = 0;
    int mismatches = 0;
    for (auto name : checkpoint.sorted_keys()) {
        const st::tensor_view view = checkpoint.tensor(name);
        const std::vector<std::byte> mine = my_part(view, rank, world);
        read_here += mine.size();
        total += view.byte_size();
        const auto parts = gather(mine, rank, world);
        if (rank != 0) continue;
        const std::vector<std::byte> whole = reassemble(view, parts);
        const std::vector<std::byte> expected =
            argc > 2 ? raw_bytes(st::open(argv[2]).tensor(name)) : raw_bytes(view);
        if (whole != expected) {
            std::fprintf(stderr, "rank 0: tensor %.*s does not match after reassembly\n", static_cast<int>(name.size()),
                         name.data());
            ++mismatches;
        }
    }
    unsigned long long mine = read_here, everyone = 0;
    MPI_Reduce(&mine, &everyone, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
    std::printf("rank %d of %d: read %llu of %llu bytes\n", rank, world, mine, static_cast<unsigned long long>(total));
    if (rank == 0) {
        std::printf("%zu tensors from %zu shard(s) reassembled from %d ranks: %s; bytes read by all ranks: %llu of %llu\n",
                    checkpoint.size(), checkpoint.shard_count(), world, mismatches == 0 ? "all equal" : "MISMATCH",
                    everyone, static_cast<unsigned long long>(total));
        if (mismatches != 0 || everyone != total) return 1;
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    MPI_Init(&argc, &argv);
    int rank = 0, world = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    int status = 0;
    try {
        status = run(argc, argv, rank, world);
    } catch (const std::exception& e) {
        // The other ranks may be waiting in a collective call for this one: stop them all.
        std::fprintf(stderr, "rank %d: %s\n", rank, e.what());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    // Any rank's failure fails the job.
    int worst = 0;
    MPI_Allreduce(&status, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    return worst;
}
