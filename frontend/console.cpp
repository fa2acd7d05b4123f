#include "frontend/console.h"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

namespace {

constexpr u8 CTRL_A = 0x01;

termios g_saved_termios;
std::atomic<bool> g_termios_saved{false};

void restore_saved_termios()
{
    if (g_termios_saved.exchange(false))
        tcsetattr(STDIN_FILENO, TCSANOW, &g_saved_termios);
}

} // namespace

Console::Console(bool interactive) : m_interactive(interactive)
{
    if (!m_interactive || !isatty(STDIN_FILENO))
        return;
    if (tcgetattr(STDIN_FILENO, &g_saved_termios) != 0)
        return;
    g_termios_saved = true;
    std::atexit(restore_saved_termios);
    termios raw = g_saved_termios;
    // Raw input so the guest sees every key (Ctrl-C goes to the guest, as in
    // QEMU's -nographic), but keep output processing so newlines stay sane.
    raw.c_iflag &= ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
    raw.c_lflag &= ~(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
    raw.c_cflag |= CS8;
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    m_raw = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
}

Console::~Console() { restore_terminal(); }

void Console::restore_terminal()
{
    if (m_raw)
        restore_saved_termios();
    m_raw = false;
}

void Console::poll(const std::function<void(u8)>& deliver)
{
    if (!m_interactive || m_eof)
        return;
    pollfd pfd{STDIN_FILENO, POLLIN, 0};
    while (::poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLIN | POLLHUP))) {
        u8 buf[256];
        const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return; // the event loop made stdin non-blocking; nothing yet
        if (n <= 0) {
            m_eof = true; // stdin closed: the guest just gets no more input
            return;
        }
        for (ssize_t i = 0; i < n; ++i) {
            const u8 byte = buf[i];
            if (m_escape) {
                m_escape = false;
                if (byte == 'x' || byte == 'X') {
                    m_user_quit = true;
                    return;
                }
                if (byte == CTRL_A || byte == 'a')
                    deliver(CTRL_A);
                continue;
            }
            if (byte == CTRL_A && m_raw) {
                m_escape = true;
                continue;
            }
            deliver(byte);
        }
    }
}

bool Console::quit_requested() const { return m_user_quit || m_signal != 0; }

std::string Console::quit_reason() const
{
    if (m_user_quit)
        return "quit from the console (Ctrl-A x)";
    if (m_signal == SIGINT)
        return "interrupted (SIGINT)";
    if (m_signal == SIGTERM)
        return "terminated (SIGTERM)";
    return "stopped";
}
