# scripts/packages.sh — sourced by the scripts that need Debian packages
# (setup.sh, fuzz.sh, tests/fuzz/libfuzzer_test.sh).

# packages_missing PKG...: prints the packages that are not installed.
packages_missing() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
    done
}

# install_packages WHO PKG...: installs the missing ones from Debian's
# archive; without root, says what is missing (as WHO) and exits 1.
install_packages() {
    local who=$1 missing
    shift
    mapfile -t missing < <(packages_missing "$@")
    [ ${#missing[@]} -gt 0 ] || return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "$who: missing packages (${missing[*]}); run as root" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
}
