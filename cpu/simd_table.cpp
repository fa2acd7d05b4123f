// SSE/AVX and other extension entries of the opcode table (handlers in
// cpu/simd*.cpp). Empty until the complete-ISA work lands them.
#include "cpu/handler_registry.h"
#include "cpu/handlers.h"

void add_simd_handlers(HandlerTableArray& t)
{
    (void)t;
}
