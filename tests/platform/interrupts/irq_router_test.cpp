#include "platform/interrupts/irq_router.h"

#include <doctest/doctest.h>

#include <utility>
#include <vector>

namespace {

struct Recorder {
    IsaIrqRouter router;
    std::vector<std::pair<unsigned, bool>> events;
    Recorder()
    {
        router.add_sink([this](unsigned irq, bool level) { events.emplace_back(irq, level); });
    }
};

} // namespace

TEST_CASE("IRQ router passes a line's level changes to its sinks")
{
    Recorder r;
    IrqLine com1 = r.router.input(4);
    com1(true);
    com1(true); // no change, nothing sent
    com1(false);
    CHECK(r.events == std::vector<std::pair<unsigned, bool>>{{4, true}, {4, false}});
}

TEST_CASE("IRQ router asserts a shared line while any of its inputs is high")
{
    Recorder r;
    IrqLine a = r.router.input(11);
    IrqLine b = r.router.input(11);
    a(true);
    b(true);
    a(false);
    CHECK(r.router.level(11));
    b(false);
    CHECK_FALSE(r.router.level(11));
    CHECK(r.events == std::vector<std::pair<unsigned, bool>>{{11, true}, {11, false}});
}

TEST_CASE("IRQ router passes a lower-and-raise pulse through as a new edge")
{
    Recorder r;
    IrqLine pit = r.router.input(0);
    pit(true);
    pit(false);
    pit(true);
    CHECK(r.events.size() == 3);
}

TEST_CASE("IRQ router state saves, loads and saves again to the same bytes")
{
    Recorder r;
    IrqLine a = r.router.input(3);
    IrqLine b = r.router.input(9);
    a(true);
    b(true);
    StateVisitor save = StateVisitor::saver();
    r.router.visit_state(save);
    IsaIrqRouter fresh;
    StateVisitor load = StateVisitor::loader(save.bytes());
    fresh.visit_state(load);
    REQUIRE(load.ok());
    StateVisitor again = StateVisitor::saver();
    fresh.visit_state(again);
    CHECK(again.bytes() == save.bytes());
    CHECK(fresh.level(3));
    CHECK(fresh.level(9));
}
