// The terminal side of COM1: puts stdin in raw mode when it is a TTY (and
// restores it at exit), hands typed bytes to the guest, and recognises
// QEMU's escape Ctrl-A x (quit) and Ctrl-A a (send a literal Ctrl-A). The
// event loop calls poll() when stdin is readable and tells it of SIGINT and
// SIGTERM (signal_received), which end the run cleanly.
#pragma once

#include "mmu/base/types.h"

#include <functional>
#include <string>

class Console {
public:
    // interactive: take input from stdin (false for a guest run that only
    // prints, e.g. under tests with stdin closed).
    explicit Console(bool interactive);
    ~Console();
    Console(const Console&) = delete;
    Console& operator=(const Console&) = delete;

    // Reads whatever stdin has without blocking; guest bytes go to `deliver`.
    void poll(const std::function<void(u8)>& deliver);
    // stdin reached its end (or failed): poll() reads nothing more.
    bool at_eof() const { return m_eof; }
    // The event loop saw SIGINT or SIGTERM.
    void signal_received(int signal_number) { m_signal = signal_number; }
    // The user typed Ctrl-A x, or a SIGINT/SIGTERM arrived.
    bool quit_requested() const;
    // The quit came from a signal (exit status 130), not from the user.
    bool quit_by_signal() const { return !m_user_quit && m_signal != 0; }
    // Why the run is quitting, for the message at exit.
    std::string quit_reason() const;

private:
    void restore_terminal();

    bool m_interactive;
    bool m_raw = false;
    bool m_escape = false; // the previous byte was Ctrl-A
    bool m_user_quit = false;
    bool m_eof = false;
    int m_signal = 0;
};
