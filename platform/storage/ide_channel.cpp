#include "platform/storage/ide_channel.h"

#include "mmu/base/state_visitor.h"

#include <algorithm>

using namespace ata;

void TaskFile::set_lba(u64 lba, bool lba48)
{
    lba_low = static_cast<u8>(lba);
    lba_mid = static_cast<u8>(lba >> 8);
    lba_high = static_cast<u8>(lba >> 16);
    if (lba48) {
        hob_lba_low = static_cast<u8>(lba >> 24);
        hob_lba_mid = static_cast<u8>(lba >> 32);
        hob_lba_high = static_cast<u8>(lba >> 40);
    } else {
        device = static_cast<u8>((device & 0xF0) | ((lba >> 24) & 0x0F));
    }
}

void TaskFile::visit_state(StateVisitor& v)
{
    v.field("feature", feature);
    v.field("count", count);
    v.field("lba_low", lba_low);
    v.field("lba_mid", lba_mid);
    v.field("lba_high", lba_high);
    v.field("hob_feature", hob_feature);
    v.field("hob_count", hob_count);
    v.field("hob_lba_low", hob_lba_low);
    v.field("hob_lba_mid", hob_lba_mid);
    v.field("hob_lba_high", hob_lba_high);
    v.field("device", device);
    v.field("status", status);
    v.field("error", error);
}

// --- IdeDevice ---

IdeDevice::IdeDevice(std::unique_ptr<BlockDevice> disk) : m_disk(std::move(disk)) {}

IdeDevice::~IdeDevice() = default;

void IdeDevice::reset()
{
    ++m_generation;
    // A request still in flight keeps the old buffer until it lands.
    m_buffer = std::make_shared<std::vector<u8>>();
    m_pio = Pio::None;
    m_pio_pos = m_pio_end = 0;
    m_dma.reset();
    m_intrq = false;
    set_signature();
}

bool IdeDevice::set_status_ok(u8 extra)
{
    m_regs->status = static_cast<u8>(STATUS_DRDY | (is_atapi() ? 0 : STATUS_DSC) | extra);
    return true;
}

void IdeDevice::put_identify_string(IdentifyWords& words, unsigned first, unsigned count,
                                    std::string_view text)
{
    for (unsigned i = 0; i < count; ++i) {
        const char hi = 2 * i < text.size() ? text[2 * i] : ' ';
        const char lo = 2 * i + 1 < text.size() ? text[2 * i + 1] : ' ';
        words[first + i] = static_cast<u16>(u8(hi) << 8 | u8(lo));
    }
}

void IdeDevice::put_dma_modes(IdentifyWords& w, u8 transfer_mode)
{
    // Multiword DMA modes 0-2 supported; the selected one in bits 10:8.
    w[63] = 0x0007;
    if ((transfer_mode & 0xF8) == 0x20)
        w[63] |= static_cast<u16>(0x0100 << (transfer_mode & 7));
    // Ultra DMA modes 0-5 supported; the selected one in bits 13:8.
    w[88] = 0x003F;
    if ((transfer_mode & 0xF8) == 0x40)
        w[88] |= static_cast<u16>(0x0100 << (transfer_mode & 7));
}

void IdeDevice::seal_identify(IdentifyWords& w)
{
    w[255] = 0x00A5;
    u8 sum = 0;
    for (u16 word : w)
        sum = static_cast<u8>(sum + (word & 0xFF) + (word >> 8));
    w[255] = static_cast<u16>(0x00A5 | u16(static_cast<u8>(-sum)) << 8);
}

void IdeDevice::send_identify(const IdentifyWords& words)
{
    m_buffer->resize(SECTOR_SIZE);
    for (unsigned i = 0; i < words.size(); ++i) {
        (*m_buffer)[2 * i] = static_cast<u8>(words[i]);
        (*m_buffer)[2 * i + 1] = static_cast<u8>(words[i] >> 8);
    }
    start_pio_in(0, SECTOR_SIZE, true);
}

bool IdeDevice::set_transfer_mode(u8 mode, u8& transfer_mode)
{
    const bool pio = mode <= 0x01 || (mode >= 0x08 && mode <= 0x0C);
    const bool mwdma = mode >= 0x20 && mode <= 0x22;
    const bool udma = mode >= 0x40 && mode <= 0x45;
    if (!pio && !mwdma && !udma)
        return false;
    if (!pio)
        transfer_mode = mode;
    return true;
}

void IdeDevice::raise_irq()
{
    m_intrq = true;
    if (m_channel)
        m_channel->update_irq();
}

void IdeDevice::abort_command(u8 error)
{
    m_pio = Pio::None;
    m_dma.reset();
    m_regs->error = error;
    set_status_ok(STATUS_ERR);
    raise_irq();
}

void IdeDevice::start_pio_in(u32 offset, u32 bytes, bool interrupt)
{
    m_pio = Pio::In;
    m_pio_pos = offset;
    m_pio_end = std::min<u32>(offset + bytes, static_cast<u32>(m_buffer->size()));
    set_status_ok(STATUS_DRQ);
    if (interrupt)
        raise_irq();
}

void IdeDevice::start_pio_out(u32 offset, u32 bytes, bool interrupt)
{
    if (m_buffer->size() < offset + bytes)
        m_buffer->resize(offset + bytes);
    m_pio = Pio::Out;
    m_pio_pos = offset;
    m_pio_end = offset + bytes;
    set_status_ok(STATUS_DRQ);
    if (interrupt)
        raise_irq();
}

u32 IdeDevice::read_data(unsigned size)
{
    if (m_pio != Pio::In)
        return 0;
    u32 value = 0;
    const std::vector<u8>& buffer = *m_buffer;
    for (unsigned i = 0; i < size && m_pio_pos < m_pio_end; ++i)
        value |= u32(buffer[m_pio_pos++]) << (8 * i);
    if (m_pio_pos >= m_pio_end) {
        m_pio = Pio::None;
        m_regs->status &= static_cast<u8>(~STATUS_DRQ);
        pio_block_done();
    }
    return value;
}

void IdeDevice::write_data(unsigned size, u32 value)
{
    if (m_pio != Pio::Out)
        return;
    std::vector<u8>& buffer = *m_buffer;
    for (unsigned i = 0; i < size && m_pio_pos < m_pio_end; ++i)
        buffer[m_pio_pos++] = static_cast<u8>(value >> (8 * i));
    if (m_pio_pos >= m_pio_end) {
        m_pio = Pio::None;
        m_regs->status &= static_cast<u8>(~STATUS_DRQ);
        pio_block_done();
    }
}

void IdeDevice::start_dma(u32 bytes, bool to_memory)
{
    if (m_buffer->size() < bytes)
        m_buffer->resize(bytes);
    m_dma = PendingDma{bytes, to_memory};
    // Until the engine has moved the data, the device holds DRQ (ATA/ATAPI-6
    // 9.7, DMA data transfer).
    set_status_ok(STATUS_DRQ);
    try_dma();
}

void IdeDevice::dma_started()
{
    try_dma();
}

void IdeDevice::try_dma()
{
    if (!m_dma || !m_channel)
        return;
    const PendingDma dma = *m_dma;
    const BusMasterDma::Result result = m_channel->bus_master().transfer(
        std::span<u8>(m_buffer->data(), dma.bytes), dma.to_memory);
    switch (result) {
    case BusMasterDma::Result::NotStarted:
    case BusMasterDma::Result::Short:
        return; // still waiting, as the device would with DRQ set
    case BusMasterDma::Result::Done:
        m_dma.reset();
        m_regs->status &= static_cast<u8>(~STATUS_DRQ);
        return dma_done(true);
    case BusMasterDma::Result::Error:
        m_dma.reset();
        m_regs->status &= static_cast<u8>(~STATUS_DRQ);
        return dma_done(false);
    }
}

void IdeDevice::submit(BlockOp op, u64 byte_offset, u32 bytes, u32 buffer_offset,
                       std::function<void(bool ok)> then)
{
    m_regs->status = static_cast<u8>(STATUS_BSY | (m_regs->status & (STATUS_DRDY | STATUS_DSC)));
    if (m_buffer->size() < buffer_offset + u64(bytes))
        m_buffer->resize(buffer_offset + u64(bytes));
    BlockRequest request;
    request.op = op;
    request.offset = byte_offset;
    request.length = bytes;
    request.buffer = m_buffer->data() + buffer_offset;
    m_disk->submit(request, [this, generation = m_generation, buffer = m_buffer,
                             then = std::move(then)](BlockStatus status) {
        if (generation != m_generation)
            return; // reset while in flight: the result is nobody's now
        then(!status.is_error());
    });
}

void IdeDevice::visit_state(StateVisitor& v)
{
    v.field("intrq", m_intrq);
    v.field("pio", m_pio);
    v.field("pio_pos", m_pio_pos);
    v.field("pio_end", m_pio_end);
    v.field("buffer", *m_buffer);
    bool dma = m_dma.has_value();
    PendingDma pending = m_dma.value_or(PendingDma{});
    v.field("dma", dma);
    v.field("dma_bytes", pending.bytes);
    v.field("dma_to_memory", pending.to_memory);
    if (v.loading()) {
        m_dma = dma ? std::optional(pending) : std::nullopt;
        // A damaged snapshot must not point the data port past the buffer.
        // Without a PIO transfer the positions are stale and never used (a
        // later command may have made the buffer smaller).
        const u32 size = static_cast<u32>(m_buffer->size());
        const bool pio = m_pio != Pio::None;
        if ((pio && (m_pio_end > size || m_pio_pos > m_pio_end)) || (dma && pending.bytes > size)) {
            m_pio = Pio::None;
            m_pio_pos = m_pio_end = 0;
            m_dma.reset();
            v.fail("IDE device state: a transfer beyond its buffer");
        }
    }
}

// --- IdeChannel ---

IdeChannel::IdeChannel(BusMasterDma& bus_master) : m_bus_master(bus_master)
{
    m_bus_master.set_start_listener([this] {
        for (auto& device : m_devices)
            if (device)
                device->dma_started();
    });
}

void IdeChannel::attach(unsigned slot, std::unique_ptr<IdeDevice> device)
{
    device->m_channel = this;
    device->m_regs = &m_regs[slot];
    m_devices[slot] = std::move(device);
    m_devices[slot]->reset();
}

void IdeChannel::reset()
{
    m_control = 0;
    m_selected = 0;
    m_regs = {};
    for (auto& device : m_devices)
        if (device)
            device->reset();
    update_irq();
}

u8 IdeChannel::status_of_selected()
{
    // An absent device reads 0 (nothing drives the bus), so a host never
    // waits on its BSY.
    IdeDevice* device = selected();
    return device ? device->regs().status : 0;
}

u64 IdeChannel::read_command(u64 offset, unsigned size)
{
    IdeDevice* device = selected();
    if (offset == 0)
        return device && size >= 2 ? device->read_data(std::min(size, 4u)) : 0;
    if (!m_devices[0] && !m_devices[1])
        return offset == 6 ? m_regs[m_selected].device : 0;
    const TaskFile& r = m_regs[m_selected];
    const bool hob = m_control & CONTROL_HOB;
    switch (offset) {
    case 1:
        return r.error;
    case 2:
        return hob ? r.hob_count : r.count;
    case 3:
        return hob ? r.hob_lba_low : r.lba_low;
    case 4:
        return hob ? r.hob_lba_mid : r.lba_mid;
    case 5:
        return hob ? r.hob_lba_high : r.lba_high;
    case 6:
        return r.device;
    case 7: {
        const u8 status = status_of_selected();
        // Reading Status acknowledges the interrupt (7.15); Alternate Status does not.
        if (device) {
            device->clear_intrq();
            update_irq();
        }
        return status;
    }
    default:
        return 0xFF;
    }
}

void IdeChannel::write_command(u64 offset, unsigned size, u64 value)
{
    if (offset == 0) {
        if (IdeDevice* device = selected(); device && size >= 2)
            device->write_data(std::min(size, 4u), static_cast<u32>(value));
        return;
    }
    const u8 byte = static_cast<u8>(value);
    // A write to the command block clears HOB (7.8).
    m_control &= static_cast<u8>(~CONTROL_HOB);
    auto shift_in = [byte](u8& reg, u8& hob) {
        hob = reg;
        reg = byte;
    };
    switch (offset) {
    case 1:
        for (TaskFile& r : m_regs)
            shift_in(r.feature, r.hob_feature);
        return;
    case 2:
        for (TaskFile& r : m_regs)
            shift_in(r.count, r.hob_count);
        return;
    case 3:
        for (TaskFile& r : m_regs)
            shift_in(r.lba_low, r.hob_lba_low);
        return;
    case 4:
        for (TaskFile& r : m_regs)
            shift_in(r.lba_mid, r.hob_lba_mid);
        return;
    case 5:
        for (TaskFile& r : m_regs)
            shift_in(r.lba_high, r.hob_lba_high);
        return;
    case 6:
        // Bits 7 and 5 are obsolete and read as set, as on the drives hosts expect.
        for (TaskFile& r : m_regs)
            r.device = byte | 0xA0;
        m_selected = (byte & DEVICE_DEV) ? 1 : 0;
        update_irq();
        return;
    case 7: {
        IdeDevice* device = selected();
        if (!device)
            return; // nothing answers a command to an absent device
        // Only DEVICE RESET to a packet device is taken while BSY or DRQ is set.
        constexpr u8 DEVICE_RESET = 0x08;
        if ((device->regs().status & (STATUS_BSY | STATUS_DRQ)) &&
            !(byte == DEVICE_RESET && device->is_atapi()))
            return;
        device->clear_intrq();
        update_irq();
        device->execute(byte);
        return;
    }
    default:
        return;
    }
}

u8 IdeChannel::read_alt_status()
{
    return status_of_selected();
}

void IdeChannel::write_device_control(u8 value)
{
    const bool was_reset = m_control & CONTROL_SRST;
    m_control = value & (CONTROL_NIEN | CONTROL_SRST | CONTROL_HOB);
    const bool in_reset = m_control & CONTROL_SRST;
    if (in_reset && !was_reset) {
        // SRST asserted: both devices drop what they were doing and stay
        // busy until it is released (9.2).
        for (auto& device : m_devices)
            if (device) {
                device->reset();
                device->regs().status = STATUS_BSY;
            }
    } else if (was_reset && !in_reset) {
        for (auto& device : m_devices)
            if (device)
                device->reset();
        m_selected = 0;
    }
    update_irq();
}

void IdeChannel::update_irq()
{
    IdeDevice* device = selected();
    const bool level = device && device->intrq() && !(m_control & CONTROL_NIEN);
    if (level == m_irq_level)
        return;
    m_irq_level = level;
    if (level)
        m_bus_master.interrupt_raised();
    if (m_irq_line)
        m_irq_line(level);
}

size_t IdeChannel::in_flight() const
{
    size_t n = 0;
    for (const auto& device : m_devices)
        if (device && device->m_disk) // an empty CD-ROM drive has no disk
            n += device->m_disk->in_flight();
    return n;
}

void IdeChannel::drain()
{
    for (auto& device : m_devices)
        if (device && device->m_disk)
            device->m_disk->drain();
}

void IdeChannel::visit_state(StateVisitor& v)
{
    v.section("ide-channel", 1);
    v.field("selected", m_selected);
    v.field("control", m_control);
    v.field("irq_level", m_irq_level);
    for (TaskFile& r : m_regs)
        r.visit_state(v);
    if (v.loading())
        m_selected &= 1;
    for (auto& device : m_devices) {
        bool present = device != nullptr;
        v.field("present", present);
        if (v.loading() && present != (device != nullptr))
            return v.fail("the snapshot's IDE drives differ from this machine's");
        if (device)
            device->visit_state(v);
    }
    if (v.loading() && m_irq_line)
        m_irq_line(m_irq_level);
}
