// A downstream program: uses safetensors-hpp exactly as a user would, through the umbrella
// header. Built with -Wall -Wextra -Wpedantic -Werror by every consumer project.
#include <safetensors/safetensors.hpp>

#include <exception>
#include <iostream>

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: consumer FILE.safetensors\n";
        return 2;
    }
    try {
        std::cout << "safetensors " << SAFETENSORS_VERSION_STRING << '\n';
        std::cout << "dtype: " << safetensors::to_string(safetensors::dtype::F32) << '\n';
        auto file = safetensors::open(argv[1]);
        std::cout << "keys: " << file.size() << '\n';
    } catch (const std::exception& e) {
        std::cerr << "consumer: " << e.what() << '\n';
        return 1;
    }
    return 0;
}
