// viridian-img: create, inspect, check, convert and merge disk images
// (docs/storage.md "viridian-img"). Argument spelling follows qemu-img.
#include "frontend/img/img_commands.h"

#include <cstdio>
#include <cstring>
#include <string>

namespace {

constexpr const char* USAGE =
    "usage: viridian-img COMMAND [options]\n"
    "  create  [-f FMT] [-o OPTIONS] [-b PARENT] FILE [SIZE]\n"
    "  info    [-f FMT] [--output=human|json] FILE\n"
    "  check   [-f FMT] [-r leaks|all] [--output=human|json] FILE\n"
    "  convert [-f FMT] [-O FMT] [-o OPTIONS] [-p] SOURCE DESTINATION\n"
    "  commit  [-f FMT] [-p] FILE\n"
    "  map     [-f FMT] [--output=human|json] FILE\n"
    "formats: raw, vpc (also vhd), vhdx; SIZE takes k, M, G, T suffixes\n";

int usage_error(const std::string& message)
{
    std::fprintf(stderr, "viridian-img: %s\nTry 'viridian-img --help' for more information.\n",
                 message.c_str());
    return 1;
}

// "a=b,c=d" into the map; false on an entry without '='.
bool parse_options(const std::string& text, std::map<std::string, std::string>& options)
{
    size_t start = 0;
    while (start <= text.size()) {
        size_t comma = text.find(',', start);
        std::string entry = text.substr(start, comma == std::string::npos ? std::string::npos
                                                                           : comma - start);
        if (!entry.empty()) {
            size_t equals = entry.find('=');
            if (equals == std::string::npos || equals == 0)
                return false;
            options[entry.substr(0, equals)] = entry.substr(equals + 1);
        }
        if (comma == std::string::npos)
            break;
        start = comma + 1;
    }
    return true;
}

} // namespace

int main(int argc, char** argv)
{
    if (argc < 2)
        return usage_error("no command given");
    std::string command = argv[1];
    if (command == "--help" || command == "-h") {
        std::fputs(USAGE, stdout);
        return 0;
    }

    ImgArguments args;
    for (int i = 2; i < argc; ++i) {
        std::string arg = argv[i];
        auto value = [&](const char* name) -> const char* {
            if (i + 1 >= argc)
                return nullptr;
            (void)name;
            return argv[++i];
        };
        if (arg == "-f" || arg == "-O" || arg == "-o" || arg == "-b" || arg == "-r" ||
            arg == "-F") {
            const char* v = value(arg.c_str());
            if (!v)
                return usage_error("option " + arg + " needs a value");
            if (arg == "-f")
                args.format = v;
            else if (arg == "-O")
                args.output_format = v;
            else if (arg == "-b")
                args.parent = v;
            else if (arg == "-r")
                args.repair = v;
            else if (arg == "-F")
                args.options["parent_format"] = v;
            else if (!parse_options(v, args.options))
                return usage_error(std::string("invalid option list '") + v + "'");
        } else if (arg == "-p") {
            args.progress = true;
        } else if (arg.rfind("--output=", 0) == 0) {
            std::string kind = arg.substr(9);
            if (kind != "json" && kind != "human")
                return usage_error("--output must be human or json, not '" + kind + "'");
            args.json = kind == "json";
        } else if (arg.size() > 1 && arg[0] == '-') {
            return usage_error("unknown option '" + arg + "'");
        } else {
            args.files.push_back(arg);
        }
    }

    if (command == "create") {
        if (args.files.size() == 2) {
            args.size = args.files[1];
            args.files.pop_back();
        }
        if (args.files.size() != 1)
            return usage_error("create needs FILE and, without -b, SIZE");
        return img_create(args);
    }
    if (command == "convert") {
        if (args.files.size() != 2)
            return usage_error("convert needs SOURCE and DESTINATION");
        return img_convert(args);
    }
    if (args.files.size() != 1)
        return usage_error(command + " needs exactly one FILE");
    if (command == "info")
        return img_info(args);
    if (command == "check")
        return img_check(args);
    if (command == "commit")
        return img_commit(args);
    if (command == "map")
        return img_map(args);
    return usage_error("unknown command '" + command + "'");
}
