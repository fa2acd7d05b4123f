// Intel 8042 keyboard controller as a PC uses it: data at 0x60, status and
// commands at 0x64, the keyboard on IRQ 1 and the auxiliary (mouse) port on
// IRQ 12, with a PS/2 keyboard and a basic PS/2 mouse plugged in.
//
// The controller (IBM AT / PS/2 technical references): status register,
// command byte and the rest of its 32 bytes of RAM (0x20-0x3F read, 0x60-0x7F
// write), self-test 0xAA -> 0x55, interface tests 0xAB / 0xA9 -> 0x00,
// keyboard and aux interface enable/disable (0xAE/0xAD, 0xA8/0xA7), input
// port 0xC0, output port 0xD0/0xD1 with the A20 gate (bit 1) and the reset
// line (bit 0, active low), 0xDD/0xDF A20 off/on, 0xD2/0xD3 writes that come
// back as keyboard or aux data, 0xD4 to send a byte to the mouse, and the
// 0xF0-0xFF output-port pulses (0xFE pulses reset). With the command byte's
// XLAT bit the controller translates the keyboard's scancode set 2 to set 1,
// as real controllers do, replies included.
//
// The keyboard: reset (0xFF -> 0xFA 0xAA), resend, set defaults, enable and
// disable scanning, typematic rate, identify (0xFA 0xAB 0x83), scancode set
// 1 or 2 (set 3 is answered with resend, as keyboards without it do), LEDs,
// echo, and a 16-byte buffer. The mouse: a 3-byte-packet PS/2 mouse (ID 0)
// with reset, identify, sample rate, resolution, scaling, status request,
// stream and remote modes, read data, wrap mode and resend.
//
// Bytes move instantly: the input buffer is never full and the next queued
// byte reaches the output buffer as soon as the guest reads the previous one.
#pragma once

#include "mmu/bus/io_device.h"
#include "mmu/base/state_visitor.h"
#include "platform/interrupts/irq_router.h"

#include <array>
#include <deque>
#include <functional>
#include <span>

class PortBus;

class I8042 {
public:
    static constexpr u16 DATA_PORT = 0x60;
    static constexpr u16 COMMAND_PORT = 0x64;
    static constexpr unsigned KEYBOARD_IRQ = 1;
    static constexpr unsigned MOUSE_IRQ = 12;

    using ResetHandler = std::function<void()>;
    using A20Handler = std::function<void(bool enabled)>;

    // Power-on state is what a PC BIOS leaves: self-test passed (system
    // flag set), translation on, keyboard interface and IRQ 1 enabled, aux
    // interface disabled, A20 enabled, keyboard in set 2 and scanning.
    I8042();

    // Maps 0x60 and 0x64 (0x61 belongs to the PIT's port B).
    void attach(PortBus& bus);
    IoDevice& data_port() { return m_data_port; }
    IoDevice& command_port() { return m_command_port; }

    void set_keyboard_irq_line(IrqLine line) { m_keyboard_irq = std::move(line); }
    void set_mouse_irq_line(IrqLine line) { m_mouse_irq = std::move(line); }
    // The system reset the guest asks for (0xFE, or output port bit 0 low).
    void set_reset_handler(ResetHandler handler) { m_reset = std::move(handler); }
    // Output port bit 1; the machine ORs it with port 0x92's A20 bit.
    void set_a20_handler(A20Handler handler) { m_a20 = std::move(handler); }
    bool a20_enabled() const { return m_output_port & 0x02; }

    // One key's make or break code in scancode set 2, e.g. {0x1C} for A down,
    // {0xF0, 0x1C} for A up, {0xE0, 0x75} for cursor up. The keyboard sends
    // it in the set the guest selected; it is dropped while scanning is
    // disabled, and an overrun code is sent when the buffer is full.
    void key_event(std::span<const u8> set2_bytes);
    // Relative motion (dy positive is away from the user, as PS/2 counts)
    // and the buttons (bit 0 left, 1 right, 2 middle).
    void mouse_event(i32 dx, i32 dy, u8 buttons);
    // Keyboard LEDs as last set: bit 0 scroll lock, 1 num lock, 2 caps lock.
    u8 keyboard_leds() const { return m_keyboard.leds; }

    void visit_state(StateVisitor& v);

private:
    struct Keyboard {
        std::deque<u8> queue;
        u8 scancode_set = 2;
        bool scanning = true;
        u8 leds = 0;
        u8 typematic = 0x2B; // 10.9 characters/s after 500 ms
        u8 pending_command = 0;
        u8 last_sent = 0;

        void write(u8 byte);
        void send(u8 byte);
        void set_defaults();
        void visit_state(StateVisitor& v);
    };

    struct Mouse {
        std::deque<u8> queue;
        bool reporting = false;
        bool remote = false;
        bool wrap = false;
        bool scale_2to1 = false;
        u8 resolution = 2; // 4 counts/mm
        u8 sample_rate = 100;
        u8 buttons = 0;
        i32 dx = 0; // motion not yet sent
        i32 dy = 0;
        bool buttons_changed = false;
        u8 pending_command = 0;
        u8 last_sent = 0;

        void write(u8 byte);
        void send(u8 byte);
        void set_defaults();
        void send_packet(bool scaled);
        // Sends accumulated motion in stream mode while there is room.
        void flush();
        void visit_state(StateVisitor& v);
    };

    class DataPort final : public IoDevice {
    public:
        explicit DataPort(I8042& kbc) : m_kbc(kbc) {}
        u64 io_read(u64 offset, unsigned size) override;
        void io_write(u64 offset, unsigned size, u64 value) override;

    private:
        I8042& m_kbc;
    };
    class CommandPort final : public IoDevice {
    public:
        explicit CommandPort(I8042& kbc) : m_kbc(kbc) {}
        u64 io_read(u64 offset, unsigned size) override;
        void io_write(u64 offset, unsigned size, u64 value) override;

    private:
        I8042& m_kbc;
    };

    u8 read_data();
    u8 read_status() const;
    void write_data(u8 value);
    void write_command(u8 value);
    void write_output_port(u8 value);
    void set_a20(bool enabled);
    u8 output_port() const;
    // A byte from the controller itself, ahead of the devices' bytes.
    void reply(u8 byte, bool aux = false);
    // Moves the next byte into an empty output buffer and updates the IRQs.
    void refill();
    void update_irqs();

    DataPort m_data_port{*this};
    CommandPort m_command_port{*this};
    IrqLine m_keyboard_irq;
    IrqLine m_mouse_irq;
    ResetHandler m_reset;
    A20Handler m_a20;

    Keyboard m_keyboard;
    Mouse m_mouse;
    std::array<u8, 32> m_ram{}; // byte 0 is the command byte
    std::deque<u16> m_replies;  // controller output; bit 8 marks aux data
    u8 m_output_port = 0;
    u8 m_pending_command = 0; // command waiting for its data byte at 0x60
    bool m_last_write_command = true;
    bool m_system_flag = true;
    u8 m_output = 0;
    bool m_output_full = false;
    bool m_output_aux = false;
    bool m_translate_break = false; // XLAT saw 0xF0: the next code is a break
    bool m_keyboard_irq_level = false;
    bool m_mouse_irq_level = false;
};
