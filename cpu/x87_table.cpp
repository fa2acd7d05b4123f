// x87 entries of the opcode table (handlers in cpu/x87*.cpp).
#include "cpu/handler_registry.h"
#include "cpu/handlers.h"

void add_x87_handlers(HandlerTableArray& t)
{
    add(t, ZYDIS_MNEMONIC_FNINIT, op_fninit);
    add(t, ZYDIS_MNEMONIC_FNCLEX, op_fnclex);
    add(t, ZYDIS_MNEMONIC_FNSTSW, op_fnstsw);
    add(t, ZYDIS_MNEMONIC_FNSTCW, op_fnstcw);
    add(t, ZYDIS_MNEMONIC_FLDCW, op_fldcw);
    add(t, ZYDIS_MNEMONIC_FWAIT, op_fwait);
    add(t, ZYDIS_MNEMONIC_FNOP, op_fnop);
}
