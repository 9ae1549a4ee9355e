// Test support: SHA-256, to compare bytes with the fixture manifests. It is the tool's own
// (tools/cli/sha256.hpp), checked against the FIPS 180-4 vectors in test_cli_verify.cpp and,
// through test_conformance.cpp, against every file hash the reference manifest records.
#pragma once

#include "../../tools/cli/sha256.hpp"

namespace test_support {

using cli::sha256_hex;

} // namespace test_support
