// A machine with a network adapter (MachineConfig::nic): the e1000 on the
// board's PCI bus, frames to and from its backend, its saved state.
#include "platform/machine/machine.h"
#include "platform/machine/snapshot.h"

#include "mmu/base/state_visitor.h"
#include "platform/net/frame_bytes.h"
#include "platform/replay/replay_log.h"

#include <doctest/doctest.h>

#include <cstdio>
#include <mutex>
#include <unistd.h>

using namespace e1000;

namespace {

constexpr GuestPhys CODE = 0x7C00, RX_RING = 0x10000, TX_RING = 0x11000, BUFFER = 0x20000;
constexpr GuestPhys NIC_MMIO = 0xFEBC0000; // where the machine assigns BAR 0

struct FakeBackend final : NetBackend {
    bool up = true;
    std::mutex mutex;
    std::vector<std::vector<u8>> sent;
    Receiver receiver;
    void send(std::span<const u8> frame) override
    {
        std::lock_guard lock(mutex);
        sent.emplace_back(frame.begin(), frame.end());
    }
    void set_receiver(Receiver r) override
    {
        std::lock_guard lock(mutex);
        receiver = std::move(r);
    }
    bool link_up() const override { return up; }
};

std::unique_ptr<Machine> make_machine(std::shared_ptr<FakeBackend> backend,
                                      MachineNic::Model model = MachineNic::Model::E1000)
{
    MachineConfig config;
    config.memory_bytes = 32ull << 20;
    config.deterministic = true;
    if (backend)
        config.nic = MachineNic{backend, {0x52, 0x54, 0x00, 0x12, 0x34, 0x56}, model, {}};
    ErrorOr<std::unique_ptr<Machine>> created = Machine::create(config);
    REQUIRE_FALSE(created.is_error());
    std::unique_ptr<Machine> machine = created.release_value();
    const u8 spin[] = {0xEB, 0xFE}; // jmp $
    REQUIRE(machine->memory().write_bytes(CODE, spin, sizeof spin));
    CpuState state = machine->vcpu_state(0);
    state.seg[CS].selector = 0;
    state.seg[CS].base = 0;
    state.rip = CODE;
    machine->set_vcpu_state(0, state);
    return machine;
}

void nic_write(Machine& m, u32 reg, u32 value)
{
    m.memory().write(NIC_MMIO + reg, 4, value);
}
u32 nic_read(Machine& m, u32 reg)
{
    return static_cast<u32>(m.memory().read(NIC_MMIO + reg, 4));
}

TEST_CASE("A machine with a network adapter has an e1000 at 00:03.0 answering at its BAR")
{
    auto backend = std::make_shared<FakeBackend>();
    std::unique_ptr<Machine> m = make_machine(backend);
    // ECAM at 0xE0000000: bus 0, device 3, function 0.
    CHECK(m->memory().read(0xE0000000 + (3u << 15), 4) == 0x100E8086);
    CHECK((nic_read(*m, e1000::STATUS) & STATUS_LU) != 0);
    CHECK(backend->receiver);
}

TEST_CASE("The adapter's link starts as the backend's is")
{
    auto backend = std::make_shared<FakeBackend>();
    backend->up = false;
    std::unique_ptr<Machine> m = make_machine(backend);
    CHECK((nic_read(*m, e1000::STATUS) & STATUS_LU) == 0);
}

// One receive descriptor at RX_RING for a buffer at BUFFER, receiving on.
void give_receive_buffer(Machine& m)
{
    std::array<u8, 16> desc{};
    store_le(desc, 0, BUFFER, 8);
    REQUIRE(m.memory().write_bytes(RX_RING, desc.data(), desc.size()));
    nic_write(m, RDBAL, static_cast<u32>(RX_RING));
    nic_write(m, RDLEN, 128);
    nic_write(m, RCTL, RCTL_EN | RCTL_BAM | RCTL_SECRC);
    nic_write(m, RDT, 1);
}

} // namespace

TEST_CASE("Frames from the backend reach the e1000's ring on the machine's thread and its frames "
          "reach the backend")
{
    auto backend = std::make_shared<FakeBackend>();
    std::unique_ptr<Machine> m = make_machine(backend);
    give_receive_buffer(*m);
    std::array<u8, 16> desc{};
    store_le(desc, 0, BUFFER, 8);
    std::vector<u8> frame(60, 0x5A);
    std::fill(frame.begin(), frame.begin() + 6, 0xFF);
    backend->receiver(frame);
    CHECK(nic_read(*m, RDH) == 0); // not before the machine takes its commands
    (void)m->run({}, 3 * Machine::QUANTUM);
    CHECK(nic_read(*m, RDH) == 1);
    CHECK(m->memory().read(BUFFER + 59, 1) == 0x5A);

    // Transmit the same bytes back out.
    store_le(desc, 8, 60, 2);
    desc[11] = TXD_EOP | TXD_RS;
    REQUIRE(m->memory().write_bytes(TX_RING, desc.data(), desc.size()));
    nic_write(*m, TDBAL, static_cast<u32>(TX_RING));
    nic_write(*m, TDLEN, 128);
    nic_write(*m, TCTL, TCTL_EN);
    nic_write(*m, TDT, 1);
    REQUIRE(backend->sent.size() == 1);
    CHECK(backend->sent[0] == frame);
}

TEST_CASE("A machine that ends lets go of its backend, and a frame posted for it is dropped")
{
    auto backend = std::make_shared<FakeBackend>();
    std::unique_ptr<Machine> m = make_machine(backend);
    NetBackend::Receiver receiver = backend->receiver;
    m.reset();
    CHECK_FALSE(backend->receiver);
    receiver(std::vector<u8>(60, 0xFF)); // posts to a queue nobody runs: nothing happens
}

TEST_CASE("A machine saves its network adapter, and a snapshot without one does not load into it")
{
    auto backend = std::make_shared<FakeBackend>();
    std::unique_ptr<Machine> m = make_machine(backend);
    nic_write(*m, IMS, ICR_RXT0);
    StateVisitor saver = StateVisitor::saver();
    m->visit_state(saver);
    REQUIRE(saver.ok());

    std::unique_ptr<Machine> other = make_machine(std::make_shared<FakeBackend>());
    StateVisitor loader = StateVisitor::loader(saver.bytes());
    other->visit_state(loader);
    CHECK(loader.ok());
    CHECK(loader.at_end());
    CHECK(nic_read(*other, IMS) == ICR_RXT0);

    std::unique_ptr<Machine> plain = make_machine(nullptr);
    StateVisitor plain_saver = StateVisitor::saver();
    plain->visit_state(plain_saver);
    StateVisitor mismatched = StateVisitor::loader(plain_saver.bytes());
    other->visit_state(mismatched);
    CHECK_FALSE((mismatched.ok() && mismatched.at_end()));
}

TEST_CASE("The synthetic adapter needs the enlightenments, and a machine saves its channel")
{
    MachineConfig config;
    config.memory_bytes = 32ull << 20;
    config.enlightenments = false;
    config.nic = MachineNic{std::make_shared<FakeBackend>(), {0x52, 0x54, 0x00, 0x12, 0x34, 0x56},
                            MachineNic::Model::Netvsc, {}};
    ErrorOr<std::unique_ptr<Machine>> refused = Machine::create(config);
    REQUIRE(refused.is_error());
    CHECK(refused.error().message.find("model=netvsc") != std::string::npos);

    auto backend = std::make_shared<FakeBackend>();
    std::unique_ptr<Machine> m = make_machine(backend, MachineNic::Model::Netvsc);
    CHECK(backend->receiver); // frames for it are taken to the machine's thread
    m->set_nic_link(false);
    StateVisitor saver = StateVisitor::saver();
    m->visit_state(saver);
    REQUIRE(saver.ok());
    std::unique_ptr<Machine> other = make_machine(std::make_shared<FakeBackend>(), MachineNic::Model::Netvsc);
    StateVisitor loader = StateVisitor::loader(saver.bytes());
    other->visit_state(loader);
    CHECK(loader.ok());
    CHECK(loader.at_end());
    // An e1000 machine's snapshot is not a netvsc machine's.
    std::unique_ptr<Machine> e1000 = make_machine(std::make_shared<FakeBackend>());
    StateVisitor e1000_saver = StateVisitor::saver();
    e1000->visit_state(e1000_saver);
    StateVisitor mismatched = StateVisitor::loader(e1000_saver.bytes());
    other->visit_state(mismatched);
    CHECK_FALSE((mismatched.ok() && mismatched.at_end()));
}

TEST_CASE("set_nic_link takes the adapter's link down and up with a link status change")
{
    auto backend = std::make_shared<FakeBackend>();
    std::unique_ptr<Machine> m = make_machine(backend);
    (void)nic_read(*m, ICR);
    m->set_nic_link(false);
    CHECK((nic_read(*m, e1000::STATUS) & STATUS_LU) == 0);
    CHECK((nic_read(*m, ICR) & ICR_LSC) != 0);
    m->set_nic_link(true);
    CHECK((nic_read(*m, e1000::STATUS) & STATUS_LU) != 0);
}

TEST_CASE("A received frame is recorded with its bytes and replayed into the ring from the log alone")
{
    const std::string path = "/tmp/viridian-nic-replay-" + std::to_string(::getpid()) + ".vrr";
    std::vector<u8> frame(60, 0x5A);
    std::fill(frame.begin(), frame.begin() + 6, 0xFF);
    {
        auto backend = std::make_shared<FakeBackend>();
        std::unique_ptr<Machine> m = make_machine(backend);
        replay::RecordingHeader header;
        header.build = replay::recording_build_identity();
        header.sync_interval = Machine::QUANTUM;
        ErrorOr<std::unique_ptr<replay::RecordingWriter>> writer = replay::RecordingWriter::create(path, header);
        REQUIRE_FALSE(writer.is_error());
        replay::Recorder recorder(writer.release_value(), header.sync_interval);
        m->set_input_log(&recorder);
        recorder.begin(*m);
        give_receive_buffer(*m);
        backend->receiver(frame);
        (void)m->run({}, 3 * Machine::QUANTUM);
        CHECK(nic_read(*m, RDH) == 1);
        REQUIRE_FALSE(recorder.finish(RunOutcome::Kind::InstructionLimit, 5, m->retired(), m->retired()).is_error());
    }
    ErrorOr<replay::Recording> recording = replay::read_recording(path);
    std::remove(path.c_str());
    REQUIRE_FALSE(recording.is_error());
    REQUIRE(recording.value().records[0].type == replay::Record::Type::Input);
    CHECK(recording.value().records[0].input.kind == HostInput::Kind::NetFrame);
    CHECK(recording.value().records[0].input.bytes == frame);

    auto backend = std::make_shared<FakeBackend>();
    std::unique_ptr<Machine> m = make_machine(backend);
    replay::Replayer replayer(recording.release_value());
    m->set_input_log(&replayer);
    replayer.begin(*m);
    give_receive_buffer(*m);
    backend->receiver(std::vector<u8>(60, 0x77)); // live: dropped
    (void)m->run({}, 3 * Machine::QUANTUM);
    CHECK_FALSE(replayer.divergence());
    CHECK(nic_read(*m, RDH) == 1);
    CHECK(m->memory().read(BUFFER + 59, 1) == 0x5A);
    CHECK_FALSE(replayer.check_end(RunOutcome::Kind::InstructionLimit, 5, m->retired()));
}

TEST_CASE("Synthetic adapters added and removed at run time: frames, ids, the next boot, snapshots")
{
    auto boot = std::make_shared<FakeBackend>();
    std::unique_ptr<Machine> m = make_machine(boot, MachineNic::Model::Netvsc);
    auto added = std::make_shared<FakeBackend>();
    MachineNic nic{added, {0x52, 0x54, 0x00, 0x12, 0x34, 0x57}, MachineNic::Model::Netvsc, "nic1"};
    CHECK(m->hot_add_nic(nic) == std::nullopt);
    CHECK(added->receiver); // its frames are taken to the machine's thread
    CHECK(m->hot_add_nic(nic) == "Duplicate device ID 'nic1'");
    MachineNic e1000 = nic;
    e1000.id = "nic2";
    e1000.model = MachineNic::Model::E1000;
    CHECK(m->hot_add_nic(e1000).has_value());
    REQUIRE(m->config().added_nics.size() == 1);
    CHECK(m->config().added_nics[0].id == "nic1");

    // The next boot's machine has it, and a snapshot says so: one without it refuses.
    ErrorOr<std::unique_ptr<Machine>> reboot = Machine::create(m->config());
    REQUIRE_FALSE(reboot.is_error());
    StateVisitor saver = StateVisitor::saver();
    m->visit_state(saver);
    REQUIRE(saver.ok());
    StateVisitor loader = StateVisitor::loader(saver.bytes());
    reboot.value()->visit_state(loader);
    CHECK((loader.ok() && loader.at_end()));
    std::unique_ptr<Machine> without = make_machine(std::make_shared<FakeBackend>(), MachineNic::Model::Netvsc);
    StateVisitor refused = StateVisitor::loader(saver.bytes());
    without->visit_state(refused);
    CHECK_FALSE((refused.ok() && refused.at_end()));
    CHECK(snapshot_configuration(m->config()) != snapshot_configuration(without->config()));

    CHECK(m->hot_remove_nic("nic9") == "Device 'nic9' not found");
    CHECK(m->hot_remove_nic("") == "Device '' not found"); // --nic's adapter stays
    CHECK(m->hot_remove_nic("nic1") == std::nullopt);
    CHECK_FALSE(added->receiver);
    CHECK(m->config().added_nics.empty());
    CHECK(boot->receiver);

    // Without the enlightenments there is no bus to add it to.
    MachineConfig plain;
    plain.memory_bytes = 32ull << 20;
    plain.enlightenments = false;
    ErrorOr<std::unique_ptr<Machine>> p = Machine::create(plain);
    REQUIRE_FALSE(p.is_error());
    CHECK(p.value()->hot_add_nic(nic) == "a synthetic network adapter needs the enlightenments");
}
