// The snapshot visitor's own refusals (a snapshot is user input).
#include "mmu/base/state_visitor.h"
#include "tests/state_patch.h"

#include <doctest/doctest.h>

TEST_CASE("A section name damaged into control characters is refused with a one-line reason")
{
    StateVisitor save = StateVisitor::saver();
    save.section("uart", 1);
    std::vector<u8> bytes = save.bytes();
    bytes[4] = '\n'; // the name's first byte
    bytes[5] = 0x1B;
    StateVisitor load = StateVisitor::loader(bytes);
    load.section("uart", 1);
    CHECK_FALSE(load.ok());
    CHECK(load.error() == "section uart v1 expected, found ??rt v1");
}
