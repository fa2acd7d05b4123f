// viridian-img's verbs (docs/storage.md "viridian-img"), each taking its
// already parsed arguments and returning the process exit status. They
// print what qemu-img prints for the same verb where qemu-img has it, so
// scripts written for one read the other.
#pragma once

#include "mmu/base/types.h"

#include <map>
#include <string>
#include <vector>

struct ImgArguments {
    std::string format;        // -f
    std::string output_format; // -O
    std::map<std::string, std::string> options; // -o key=value,...
    std::string parent;        // -b
    bool progress = false;     // -p
    bool json = false;         // --output=json
    std::string repair;        // check -r leaks|all
    std::vector<std::string> files;
    std::string size; // create's optional size argument
};

int img_create(const ImgArguments& args);
int img_info(const ImgArguments& args);
int img_check(const ImgArguments& args);
int img_convert(const ImgArguments& args);
int img_commit(const ImgArguments& args);
int img_map(const ImgArguments& args);

// "1G", "512M", "10240", "1.5T": bytes, with qemu-img's binary suffixes
// (k/K, M, G, T, P, E; b for 512-byte sectors is not accepted). False if
// malformed or too large.
bool parse_image_size(const std::string& text, u64& bytes);
