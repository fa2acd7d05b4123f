#include "platform/serial/i8042.h"

#include "mmu/bus/port_bus.h"

#include <algorithm>
#include <cstdlib>

namespace {

// Status register.
constexpr u8 STATUS_OBF = 1 << 0;      // output buffer full
constexpr u8 STATUS_SYSTEM = 1 << 2;   // system flag (self-test passed)
constexpr u8 STATUS_COMMAND = 1 << 3;  // last write went to 0x64
constexpr u8 STATUS_UNLOCKED = 1 << 4; // keyboard not inhibited by the key lock
constexpr u8 STATUS_AUX = 1 << 5;      // the output buffer holds aux data

// Command byte (controller RAM byte 0).
constexpr u8 CTR_KEYBOARD_INT = 1 << 0;
constexpr u8 CTR_AUX_INT = 1 << 1;
constexpr u8 CTR_SYSTEM = 1 << 2;
constexpr u8 CTR_KEYBOARD_DISABLE = 1 << 4;
constexpr u8 CTR_AUX_DISABLE = 1 << 5;
constexpr u8 CTR_TRANSLATE = 1 << 6;

// Output port.
constexpr u8 OUT_RESET = 1 << 0; // low resets the CPU
constexpr u8 OUT_A20 = 1 << 1;
constexpr u8 OUT_KEYBOARD_OBF = 1 << 4;
constexpr u8 OUT_AUX_OBF = 1 << 5;
// Clock and data lines read high when idle (and bits 2-3 as QEMU reports).
constexpr u8 OUT_IDLE_LINES = 0xCC;

// Input port: bit 7 high means the key lock does not inhibit the keyboard.
constexpr u8 INPUT_PORT = 0x80;

// Controller commands.
enum Command : u8 {
    READ_RAM = 0x20,  // 0x20-0x3F
    WRITE_RAM = 0x60, // 0x60-0x7F
    AUX_DISABLE = 0xA7,
    AUX_ENABLE = 0xA8,
    AUX_TEST = 0xA9,
    SELF_TEST = 0xAA,
    KEYBOARD_TEST = 0xAB,
    KEYBOARD_DISABLE = 0xAD,
    KEYBOARD_ENABLE = 0xAE,
    READ_INPUT_PORT = 0xC0,
    READ_OUTPUT_PORT = 0xD0,
    WRITE_OUTPUT_PORT = 0xD1,
    WRITE_KEYBOARD_OUTPUT = 0xD2,
    WRITE_AUX_OUTPUT = 0xD3,
    WRITE_AUX = 0xD4,
    A20_OFF = 0xDD,
    A20_ON = 0xDF,
    READ_TEST_INPUTS = 0xE0,
    PULSE = 0xF0, // 0xF0-0xFF: pulse the output port bits whose mask bit is 0
};

constexpr u8 SELF_TEST_OK = 0x55;
constexpr u8 INTERFACE_OK = 0x00;

// PS/2 device replies.
constexpr u8 ACK = 0xFA;
constexpr u8 RESEND = 0xFE;
constexpr u8 SELF_TEST_PASSED = 0xAA;
constexpr u8 ECHO = 0xEE;

constexpr size_t KEYBOARD_BUFFER = 16;
constexpr size_t MOUSE_BUFFER = 16;

// What the 8042 sends for each set 2 code with XLAT on (IBM PS/2 technical
// reference, keyboard controller translation); also how a keyboard in set 1
// codes the keys whose set 2 codes are listed. Bytes 0x80 and up pass
// unchanged except 0x83 (F7) and 0x84 (Alt+SysRq).
constexpr u8 SET2_TO_SET1[128] = {
    0xff, 0x43, 0x41, 0x3f, 0x3d, 0x3b, 0x3c, 0x58, 0x64, 0x44, 0x42, 0x40, 0x3e, 0x0f, 0x29, 0x59,
    0x65, 0x38, 0x2a, 0x70, 0x1d, 0x10, 0x02, 0x5a, 0x66, 0x71, 0x2c, 0x1f, 0x1e, 0x11, 0x03, 0x5b,
    0x67, 0x2e, 0x2d, 0x20, 0x12, 0x05, 0x04, 0x5c, 0x68, 0x39, 0x2f, 0x21, 0x14, 0x13, 0x06, 0x5d,
    0x69, 0x31, 0x30, 0x23, 0x22, 0x15, 0x07, 0x5e, 0x6a, 0x72, 0x32, 0x24, 0x16, 0x08, 0x09, 0x5f,
    0x6b, 0x33, 0x25, 0x17, 0x18, 0x0b, 0x0a, 0x60, 0x6c, 0x34, 0x35, 0x26, 0x27, 0x19, 0x0c, 0x61,
    0x6d, 0x73, 0x28, 0x74, 0x1a, 0x0d, 0x62, 0x6e, 0x3a, 0x36, 0x1c, 0x1b, 0x75, 0x2b, 0x63, 0x76,
    0x55, 0x56, 0x77, 0x78, 0x79, 0x7a, 0x0e, 0x7b, 0x7c, 0x4f, 0x7d, 0x4b, 0x47, 0x7e, 0x7f, 0x6f,
    0x52, 0x53, 0x50, 0x4c, 0x4d, 0x48, 0x01, 0x45, 0x57, 0x4e, 0x51, 0x4a, 0x37, 0x49, 0x46, 0x54,
};

u8 set2_to_set1(u8 code)
{
    if (code < 0x80)
        return SET2_TO_SET1[code];
    if (code == 0x83)
        return 0x41;
    if (code == 0x84)
        return 0x54;
    return code;
}

constexpr u8 BREAK_PREFIX = 0xF0; // set 2: the next code is a key release
constexpr u8 SET1_BREAK = 0x80;   // set 1: a release is the make code with bit 7

} // namespace

I8042::I8042()
{
    m_ram[0] = CTR_TRANSLATE | CTR_AUX_DISABLE | CTR_SYSTEM | CTR_KEYBOARD_INT;
    m_output_port = OUT_IDLE_LINES | OUT_A20 | OUT_RESET;
}

void I8042::attach(PortBus& bus)
{
    bus.map(DATA_PORT, 1, &m_data_port);
    bus.map(COMMAND_PORT, 1, &m_command_port);
}

// --- host input ---------------------------------------------------------------

void I8042::key_event(std::span<const u8> set2_bytes)
{
    Keyboard& kb = m_keyboard;
    if (!kb.scanning || set2_bytes.empty())
        return;
    std::vector<u8> codes;
    if (kb.scancode_set == 1) {
        bool release = false;
        for (u8 b : set2_bytes) {
            if (b == BREAK_PREFIX) {
                release = true;
                continue;
            }
            codes.push_back(static_cast<u8>(set2_to_set1(b) | (release ? SET1_BREAK : 0)));
            release = false;
        }
    } else {
        codes.assign(set2_bytes.begin(), set2_bytes.end());
    }
    // The buffer's last place is kept for the overrun code, which a keyboard
    // sends once in place of the keys that did not fit.
    if (kb.queue.size() + codes.size() > KEYBOARD_BUFFER - 1) {
        const u8 overrun = kb.scancode_set == 1 ? 0xFF : 0x00;
        if (kb.queue.size() < KEYBOARD_BUFFER && (kb.queue.empty() || kb.queue.back() != overrun))
            kb.queue.push_back(overrun);
    } else {
        for (u8 c : codes)
            kb.send(c);
    }
    refill();
}

void I8042::mouse_event(i32 dx, i32 dy, u8 buttons)
{
    Mouse& m = m_mouse;
    buttons &= 7;
    if (buttons != m.buttons)
        m.buttons_changed = true;
    m.buttons = buttons;
    // Motion accumulates in remote mode (read with 0xEB) and while a stream
    // waits for room; with reporting off in stream mode it is discarded.
    if (m.remote || m.reporting) {
        m.dx = std::clamp(m.dx + dx, -65536, 65536);
        m.dy = std::clamp(m.dy + dy, -65536, 65536);
    }
    m.flush();
    refill();
}

// --- controller -----------------------------------------------------------------

u8 I8042::read_status() const
{
    u8 status = STATUS_UNLOCKED;
    if (m_output_full)
        status |= STATUS_OBF | (m_output_aux ? STATUS_AUX : 0);
    if (m_system_flag)
        status |= STATUS_SYSTEM;
    if (m_last_write_command)
        status |= STATUS_COMMAND;
    return status;
}

u8 I8042::read_data()
{
    // Reading an empty buffer returns the last byte again.
    const u8 value = m_output;
    if (m_output_full) {
        m_output_full = false;
        // Drop the line before the next byte moves in, so that it raises a
        // fresh edge: on a real PC the next byte arrives a transmission time
        // later, and edge-triggered inputs see one edge per byte.
        update_irqs();
        refill();
    }
    return value;
}

u8 I8042::output_port() const
{
    u8 port = m_output_port & static_cast<u8>(~(OUT_KEYBOARD_OBF | OUT_AUX_OBF));
    if (m_output_full)
        port |= m_output_aux ? OUT_AUX_OBF : OUT_KEYBOARD_OBF;
    return port;
}

void I8042::reply(u8 byte, bool aux)
{
    m_replies.push_back(static_cast<u16>(byte | (aux ? 0x100 : 0)));
    refill();
}

void I8042::write_command(u8 command)
{
    m_last_write_command = true;
    m_pending_command = 0;
    if (command >= PULSE) {
        // Bits 3-0 name output port bits to pulse low; only reset matters.
        if (!(command & OUT_RESET) && m_reset)
            m_reset();
        return;
    }
    if (command >= READ_RAM && command < READ_RAM + 0x20) {
        reply(m_ram[command & 0x1F]);
        return;
    }
    if (command >= WRITE_RAM && command < WRITE_RAM + 0x20) {
        m_pending_command = command;
        return;
    }
    switch (command) {
    case AUX_DISABLE:
        m_ram[0] |= CTR_AUX_DISABLE;
        break;
    case AUX_ENABLE:
        m_ram[0] &= static_cast<u8>(~CTR_AUX_DISABLE);
        break;
    case AUX_TEST:
    case KEYBOARD_TEST:
        reply(INTERFACE_OK);
        return;
    case SELF_TEST:
        m_system_flag = true;
        reply(SELF_TEST_OK);
        return;
    case KEYBOARD_DISABLE:
        m_ram[0] |= CTR_KEYBOARD_DISABLE;
        break;
    case KEYBOARD_ENABLE:
        m_ram[0] &= static_cast<u8>(~CTR_KEYBOARD_DISABLE);
        break;
    case READ_INPUT_PORT:
        reply(INPUT_PORT);
        return;
    case READ_OUTPUT_PORT:
        reply(output_port());
        return;
    case READ_TEST_INPUTS:
        reply(0x00);
        return;
    case WRITE_OUTPUT_PORT:
    case WRITE_KEYBOARD_OUTPUT:
    case WRITE_AUX_OUTPUT:
    case WRITE_AUX:
        m_pending_command = command;
        return;
    case A20_OFF:
        set_a20(false);
        return;
    case A20_ON:
        set_a20(true);
        return;
    default:
        return; // unknown commands are ignored, as QEMU does
    }
    refill(); // an interface was enabled or disabled
}

void I8042::write_data(u8 value)
{
    m_last_write_command = false;
    const u8 command = m_pending_command;
    m_pending_command = 0;
    if (command >= WRITE_RAM && command < WRITE_RAM + 0x20) {
        m_ram[command & 0x1F] = value;
        if (command == WRITE_RAM)
            m_system_flag = value & CTR_SYSTEM;
        refill();
        return;
    }
    switch (command) {
    case WRITE_OUTPUT_PORT:
        write_output_port(value);
        return;
    case WRITE_KEYBOARD_OUTPUT:
        reply(value);
        return;
    case WRITE_AUX_OUTPUT:
        reply(value, true);
        return;
    case WRITE_AUX:
        m_mouse.write(value);
        m_mouse.flush();
        refill();
        return;
    default:
        // A byte for the keyboard. Sending to the keyboard also re-enables
        // its interface (QEMU models this; drivers rely on it after 0xAD).
        m_keyboard.write(value);
        m_ram[0] &= static_cast<u8>(~CTR_KEYBOARD_DISABLE);
        refill();
        return;
    }
}

void I8042::write_output_port(u8 value)
{
    const bool a20 = value & OUT_A20;
    m_output_port = static_cast<u8>((value & ~OUT_A20) | (m_output_port & OUT_A20));
    set_a20(a20);
    if (!(value & OUT_RESET) && m_reset)
        m_reset();
}

void I8042::set_a20(bool enabled)
{
    const bool was = m_output_port & OUT_A20;
    m_output_port =
        static_cast<u8>(enabled ? (m_output_port | OUT_A20) : (m_output_port & ~OUT_A20));
    if (was != enabled && m_a20)
        m_a20(enabled);
}

void I8042::refill()
{
    if (!m_output_full) {
        if (!m_replies.empty()) {
            const u16 entry = m_replies.front();
            m_replies.pop_front();
            m_output = static_cast<u8>(entry);
            m_output_aux = entry & 0x100;
            m_output_full = true;
        }
        // The keyboard sends only while its interface is enabled; with XLAT
        // the controller turns its set 2 bytes into set 1 on the way.
        while (!m_output_full && !(m_ram[0] & CTR_KEYBOARD_DISABLE) && !m_keyboard.queue.empty()) {
            u8 byte = m_keyboard.queue.front();
            m_keyboard.queue.pop_front();
            if (m_ram[0] & CTR_TRANSLATE) {
                if (byte == BREAK_PREFIX) {
                    m_translate_break = true;
                    continue;
                }
                byte = static_cast<u8>(set2_to_set1(byte) | (m_translate_break ? SET1_BREAK : 0));
                m_translate_break = false;
            }
            m_output = byte;
            m_output_aux = false;
            m_output_full = true;
        }
        if (!m_output_full && !(m_ram[0] & CTR_AUX_DISABLE) && !m_mouse.queue.empty()) {
            m_output = m_mouse.queue.front();
            m_mouse.queue.pop_front();
            m_output_aux = true;
            m_output_full = true;
            m_mouse.flush();
        }
    }
    update_irqs();
}

void I8042::update_irqs()
{
    const bool keyboard = m_output_full && !m_output_aux && (m_ram[0] & CTR_KEYBOARD_INT);
    const bool mouse = m_output_full && m_output_aux && (m_ram[0] & CTR_AUX_INT);
    if (keyboard != m_keyboard_irq_level) {
        m_keyboard_irq_level = keyboard;
        if (m_keyboard_irq)
            m_keyboard_irq(keyboard);
    }
    if (mouse != m_mouse_irq_level) {
        m_mouse_irq_level = mouse;
        if (m_mouse_irq)
            m_mouse_irq(mouse);
    }
}

// --- PS/2 keyboard ---------------------------------------------------------------

void I8042::Keyboard::send(u8 byte)
{
    last_sent = byte;
    queue.push_back(byte);
}

void I8042::Keyboard::set_defaults()
{
    typematic = 0x2B;
}

void I8042::Keyboard::write(u8 byte)
{
    if (pending_command) {
        const u8 command = pending_command;
        pending_command = 0;
        switch (command) {
        case 0xED: // set LEDs
            leds = byte & 7;
            send(ACK);
            return;
        case 0xF3: // typematic rate and delay
            typematic = byte & 0x7F;
            send(ACK);
            return;
        case 0xF0: // scancode set
            if (byte == 0) {
                send(ACK);
                send(scancode_set);
            } else if (byte == 1 || byte == 2) {
                scancode_set = byte;
                send(ACK);
            } else {
                send(RESEND); // set 3 is not supported
            }
            return;
        }
    }
    switch (byte) {
    case 0xFF: // reset: ACK, then the basic assurance test result
        queue.clear();
        set_defaults();
        scancode_set = 2;
        leds = 0;
        scanning = true;
        send(ACK);
        send(SELF_TEST_PASSED);
        return;
    case 0xFE: // resend the last byte
        queue.push_back(last_sent);
        return;
    case 0xF6: // set defaults and enable
        queue.clear();
        set_defaults();
        scanning = true;
        send(ACK);
        return;
    case 0xF5: // set defaults and disable scanning
        queue.clear();
        set_defaults();
        scanning = false;
        send(ACK);
        return;
    case 0xF4: // enable scanning
        queue.clear();
        scanning = true;
        send(ACK);
        return;
    case 0xF3:
    case 0xF0:
    case 0xED:
        pending_command = byte;
        send(ACK);
        return;
    case 0xF2: // identify: an MF2 keyboard
        send(ACK);
        send(0xAB);
        send(0x83);
        return;
    case 0xEE:
        send(ECHO);
        return;
    case 0xF7: // set 3 key-type commands: acknowledged, no effect in sets 1 and 2
    case 0xF8:
    case 0xF9:
    case 0xFA:
    case 0xFB:
    case 0xFC:
    case 0xFD:
        send(ACK);
        return;
    default:
        send(RESEND);
        return;
    }
}

void I8042::Keyboard::visit_state(StateVisitor& v)
{
    v.field("queue", queue);
    v.field("scancode_set", scancode_set);
    v.field("scanning", scanning);
    v.field("leds", leds);
    v.field("typematic", typematic);
    v.field("pending_command", pending_command);
    v.field("last_sent", last_sent);
}

// --- PS/2 mouse ---------------------------------------------------------------------

void I8042::Mouse::send(u8 byte)
{
    last_sent = byte;
    queue.push_back(byte);
}

void I8042::Mouse::set_defaults()
{
    sample_rate = 100;
    resolution = 2;
    scale_2to1 = false;
    reporting = false;
    dx = dy = 0;
}

void I8042::Mouse::send_packet(bool scaled)
{
    auto scale = [&](i32 d) {
        if (!scaled || !scale_2to1)
            return d;
        // 2:1 scaling (PS/2 mouse spec): 1:1, 2:1, 3:3, 4:6, 5:9, then doubled.
        static constexpr i32 table[6] = {0, 1, 1, 3, 6, 9};
        const i32 a = std::abs(d);
        const i32 s = a <= 5 ? table[a] : 2 * a;
        return d < 0 ? -s : s;
    };
    const i32 x = std::clamp(dx, -256, 255);
    const i32 y = std::clamp(dy, -256, 255);
    dx -= x;
    dy -= y;
    const i32 sx = scale(x);
    const i32 sy = scale(y);
    const bool x_over = sx < -256 || sx > 255;
    const bool y_over = sy < -256 || sy > 255;
    u8 b0 = static_cast<u8>(0x08 | (buttons & 7));
    if (sx < 0)
        b0 |= 0x10;
    if (sy < 0)
        b0 |= 0x20;
    if (x_over)
        b0 |= 0x40;
    if (y_over)
        b0 |= 0x80;
    send(b0);
    send(static_cast<u8>(std::clamp(sx, -256, 255)));
    send(static_cast<u8>(std::clamp(sy, -256, 255)));
    buttons_changed = false;
}

void I8042::Mouse::flush()
{
    if (remote || !reporting || wrap)
        return;
    while ((dx || dy || buttons_changed) && queue.size() + 3 <= MOUSE_BUFFER)
        send_packet(true);
}

void I8042::Mouse::write(u8 byte)
{
    if (pending_command) {
        const u8 command = pending_command;
        pending_command = 0;
        if (command == 0xE8)
            resolution = byte & 3;
        else
            sample_rate = byte;
        send(ACK);
        return;
    }
    if (wrap && byte != 0xEC && byte != 0xFF) {
        send(byte); // wrap mode echoes
        return;
    }
    switch (byte) {
    case 0xFF: // reset: ACK, self-test passed, device ID
        queue.clear();
        set_defaults();
        remote = false;
        wrap = false;
        send(ACK);
        send(SELF_TEST_PASSED);
        send(0x00);
        return;
    case 0xFE:
        queue.push_back(last_sent);
        return;
    case 0xF6:
        set_defaults();
        send(ACK);
        return;
    case 0xF5:
        reporting = false;
        dx = dy = 0;
        send(ACK);
        return;
    case 0xF4:
        reporting = true;
        send(ACK);
        return;
    case 0xF3: // sample rate
    case 0xE8: // resolution
        pending_command = byte;
        send(ACK);
        return;
    case 0xF2: // identify: a standard PS/2 mouse
        send(ACK);
        send(0x00);
        return;
    case 0xF0:
        remote = true;
        send(ACK);
        return;
    case 0xEE:
        wrap = true;
        send(ACK);
        return;
    case 0xEC:
        wrap = false;
        send(ACK);
        return;
    case 0xEB: // read data: one packet even without motion
        send(ACK);
        send_packet(true);
        return;
    case 0xEA:
        remote = false;
        dx = dy = 0;
        send(ACK);
        return;
    case 0xE9: { // status request
        send(ACK);
        // Byte 1: remote, enabled, 2:1 scaling, then left, middle, right.
        const u8 left = buttons & 1, right = (buttons >> 1) & 1, middle = (buttons >> 2) & 1;
        send(static_cast<u8>((remote ? 0x40 : 0) | (reporting ? 0x20 : 0) |
                             (scale_2to1 ? 0x10 : 0) | left << 2 | middle << 1 | right));
        send(resolution);
        send(sample_rate);
        return;
    }
    case 0xE7:
        scale_2to1 = true;
        send(ACK);
        return;
    case 0xE6:
        scale_2to1 = false;
        send(ACK);
        return;
    default:
        send(RESEND);
        return;
    }
}

void I8042::Mouse::visit_state(StateVisitor& v)
{
    v.field("queue", queue);
    v.field("reporting", reporting);
    v.field("remote", remote);
    v.field("wrap", wrap);
    v.field("scale_2to1", scale_2to1);
    v.field("resolution", resolution);
    v.field("sample_rate", sample_rate);
    v.field("buttons", buttons);
    v.field("dx", dx);
    v.field("dy", dy);
    v.field("buttons_changed", buttons_changed);
    v.field("pending_command", pending_command);
    v.field("last_sent", last_sent);
}

// --- ports and state -----------------------------------------------------------------------

u64 I8042::DataPort::io_read(u64 offset, unsigned size)
{
    u64 value = ~0ull >> (64 - 8 * size);
    if (offset == 0)
        value = (value & ~0xFFull) | m_kbc.read_data();
    return value;
}

void I8042::DataPort::io_write(u64 offset, unsigned /*size*/, u64 value)
{
    if (offset == 0)
        m_kbc.write_data(static_cast<u8>(value));
}

u64 I8042::CommandPort::io_read(u64 offset, unsigned size)
{
    u64 value = ~0ull >> (64 - 8 * size);
    if (offset == 0)
        value = (value & ~0xFFull) | m_kbc.read_status();
    return value;
}

void I8042::CommandPort::io_write(u64 offset, unsigned /*size*/, u64 value)
{
    if (offset == 0)
        m_kbc.write_command(static_cast<u8>(value));
}

void I8042::visit_state(StateVisitor& v)
{
    v.section("i8042", 1);
    v.field("ram", m_ram);
    v.field("replies", m_replies);
    v.field("output_port", m_output_port);
    v.field("pending_command", m_pending_command);
    v.field("last_write_command", m_last_write_command);
    v.field("system_flag", m_system_flag);
    v.field("output", m_output);
    v.field("output_full", m_output_full);
    v.field("output_aux", m_output_aux);
    v.field("translate_break", m_translate_break);
    v.field("keyboard_irq_level", m_keyboard_irq_level);
    v.field("mouse_irq_level", m_mouse_irq_level);
    m_keyboard.visit_state(v);
    m_mouse.visit_state(v);
}
