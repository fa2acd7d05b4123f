// Which KVM a host has, read off /sys/module (accel/kvm/kvm_vm.h kvm_kind).
#include "accel/kvm/kvm_vm.h"

#include <doctest/doctest.h>

#include <filesystem>

namespace {

// A /sys/module stand-in holding the named module folders.
struct FakeSysModule {
    std::filesystem::path root;
    explicit FakeSysModule(std::initializer_list<const char*> modules)
        : root(std::filesystem::temp_directory_path() /
               ("viridian-sys-module-" + std::to_string(::getpid())))
    {
        std::filesystem::remove_all(root);
        std::filesystem::create_directories(root);
        for (const char* m : modules)
            std::filesystem::create_directories(root / m);
    }
    ~FakeSysModule() { std::filesystem::remove_all(root); }
};

} // namespace

TEST_CASE("kvm_kind tells VT-x or SVM from PVM by the loaded modules")
{
    CHECK(kvm_kind(FakeSysModule{"kvm", "kvm_intel"}.root) == KvmKind::Hardware);
    CHECK(kvm_kind(FakeSysModule{"kvm", "kvm_amd"}.root) == KvmKind::Hardware);
    // The build machines' host: PVM only (a paravirtualized kernel under KVM).
    CHECK(kvm_kind(FakeSysModule{"kvm", "kvm_pvm"}.root) == KvmKind::Pvm);
    // PVM beside a hardware module: the hardware one is what /dev/kvm is.
    CHECK(kvm_kind(FakeSysModule{"kvm", "kvm_pvm", "kvm_intel"}.root) == KvmKind::Hardware);
    CHECK(kvm_kind(FakeSysModule{"kvm"}.root) == KvmKind::Unknown);
}
