// The terminal side of COM1: puts stdin in raw mode when it is a TTY (and
// restores it at exit, also on SIGINT/SIGTERM), hands typed bytes to the
// guest, and recognises QEMU's escape Ctrl-A x (quit) and Ctrl-A a (send a
// literal Ctrl-A). SIGINT and SIGTERM ask the run loop to stop cleanly.
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
    // The user typed Ctrl-A x, or a SIGINT/SIGTERM arrived.
    bool quit_requested() const;
    // Why the run is quitting, for the message at exit.
    std::string quit_reason() const;

private:
    void restore_terminal();

    bool m_interactive;
    bool m_raw = false;
    bool m_escape = false; // the previous byte was Ctrl-A
    bool m_user_quit = false;
    bool m_eof = false;
};
