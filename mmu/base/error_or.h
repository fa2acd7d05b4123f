// Host and user errors as values (docs/coding-style.md "Errors", channel 3):
// a loader or the command line returns ErrorOr<T>; frontend/ prints the
// one-line message and exits non-zero. Nothing here throws. A protocol that
// needs more than a message in its errors (QMP's error class,
// frontend/qmp/qmp_commands.h) names its own error type as the second
// parameter.
//
// TRY(expr) evaluates an ErrorOr, returns its error from the enclosing
// function if it failed, and otherwise yields the value:
//     Image image = TRY(read_image(path));
// It uses a GNU statement expression (g++ and clang++ both accept it).
#pragma once

#include <string>
#include <utility>
#include <variant>

struct Error {
    std::string message;
};

inline Error make_error(std::string message)
{
    return Error{std::move(message)};
}

template <class T, class E = Error> class [[nodiscard]] ErrorOr {
public:
    ErrorOr(T value) : m_value(std::move(value)) {}
    ErrorOr(E error) : m_value(std::move(error)) {}

    bool is_error() const { return std::holds_alternative<E>(m_value); }
    const E& error() const { return std::get<E>(m_value); }
    T& value() { return std::get<T>(m_value); }
    const T& value() const { return std::get<T>(m_value); }
    T release_value() { return std::move(std::get<T>(m_value)); }
    E release_error() { return std::move(std::get<E>(m_value)); }

private:
    std::variant<T, E> m_value;
};

template <class E> class [[nodiscard]] ErrorOr<void, E> {
public:
    ErrorOr() = default;
    ErrorOr(E error) : m_error(std::move(error)), m_failed(true) {}

    bool is_error() const { return m_failed; }
    const E& error() const { return m_error; }
    E release_error() { return std::move(m_error); }
    void release_value() {}

private:
    E m_error;
    bool m_failed = false;
};

#define TRY(expression)                                                                            \
    ({                                                                                             \
        auto _try_result = (expression);                                                           \
        if (_try_result.is_error()) [[unlikely]]                                                   \
            return _try_result.release_error();                                                    \
        _try_result.release_value();                                                               \
    })
