// Host and user errors as values (docs/coding-style.md "Errors", channel 3):
// a loader or the command line returns ErrorOr<T>; frontend/ prints the
// one-line message and exits non-zero. Nothing here throws.
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

template <class T> class [[nodiscard]] ErrorOr {
public:
    ErrorOr(T value) : m_value(std::move(value)) {}
    ErrorOr(Error error) : m_value(std::move(error)) {}

    bool is_error() const { return std::holds_alternative<Error>(m_value); }
    const Error& error() const { return std::get<Error>(m_value); }
    T& value() { return std::get<T>(m_value); }
    const T& value() const { return std::get<T>(m_value); }
    T release_value() { return std::move(std::get<T>(m_value)); }
    Error release_error() { return std::move(std::get<Error>(m_value)); }

private:
    std::variant<T, Error> m_value;
};

template <> class [[nodiscard]] ErrorOr<void> {
public:
    ErrorOr() = default;
    ErrorOr(Error error) : m_error(std::move(error)), m_failed(true) {}

    bool is_error() const { return m_failed; }
    const Error& error() const { return m_error; }
    Error release_error() { return std::move(m_error); }
    void release_value() {}

private:
    Error m_error;
    bool m_failed = false;
};

#define TRY(expression)                                                                            \
    ({                                                                                             \
        auto _try_result = (expression);                                                           \
        if (_try_result.is_error()) [[unlikely]]                                                   \
            return _try_result.release_error();                                                    \
        _try_result.release_value();                                                               \
    })
