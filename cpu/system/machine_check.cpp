#include "cpu/system/machine_check.h"

namespace mca {

namespace {

// Bank registers, in MSR order from MCi_CTL.
enum BankRegister : unsigned { CTL = 0, STATUS = 1, ADDR = 2, MISC = 3 };

bool in_banks(u32 index) { return index >= MSR_MC0_CTL && index < MSR_MC0_CTL + 4 * BANKS; }

// The enable masks (IA32_MCG_CTL, MCi_CTL) take all ones or all zeros, as
// KVM enforces and Linux writes: their bits name error types the model does
// not define.
bool valid_enable_mask(u64 value) { return value == 0 || value == ~0ull; }

} // namespace

std::optional<bool> read(const MachineCheckState& mc, u32 index, u64& value)
{
    switch (index) {
    case MSR_MCG_CAP: value = MCG_CAP_VALUE; return true;
    case MSR_MCG_STATUS: value = mc.mcg_status; return true;
    case MSR_MCG_CTL: value = mc.mcg_ctl; return true;
    default:
        break;
    }
    if (!in_banks(index))
        return std::nullopt;
    const unsigned offset = index - MSR_MC0_CTL;
    value = mc.banks[offset / 4][offset % 4];
    return true;
}

std::optional<bool> write(MachineCheckState& mc, u32 index, u64 value)
{
    switch (index) {
    case MSR_MCG_CAP: return false; // read-only
    case MSR_MCG_STATUS:
        if (value & ~MCG_STATUS_WRITABLE)
            return false;
        mc.mcg_status = value;
        return true;
    case MSR_MCG_CTL:
        if (!valid_enable_mask(value))
            return false;
        mc.mcg_ctl = value;
        return true;
    default:
        break;
    }
    if (!in_banks(index))
        return std::nullopt;
    const unsigned offset = index - MSR_MC0_CTL;
    const unsigned reg = offset % 4;
    if (reg == CTL && !valid_enable_mask(value))
        return false;
    if (reg == STATUS && value != 0)
        return false; // software may only clear a status (SDM Vol 3B 16.3.2.2)
    mc.banks[offset / 4][reg] = value;
    return true;
}

} // namespace mca
