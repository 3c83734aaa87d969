# lib-imaging.sh - for the imaging server's shell tests (tests/test-imaging-*.sh; sourced
# after tap.sh, with B the build directory, T the test's directory and port set).

# imaging_config_head STATE-DIR [PORT [MODULE-DIR...]]: the start of a prebootd
# configuration, to stdout: the daemon section (its files under T, the http, imaging and local
# backend modules of B, then the MODULE-DIRs) and the http plugin on 127.0.0.1:PORT (default
# $port). The caller goes on with more http options or the next plugin.
imaging_config_head() {
    _ic_state=$1 _ic_port=${2:-$port}
    shift
    [ $# -gt 0 ] && shift
    _ic_dirs="$B/plugins/http/.libs, $B/plugins/imaging/.libs, $B/backends/local/.libs"
    for _ic_d in "$@"; do _ic_dirs="$_ic_dirs, $_ic_d"; done
    cat <<EOF
daemon:
  plugin_path: [$_ic_dirs]
  log_dir: $T/log
  state_dir: $_ic_state
  pid_file: $T/prebootd.pid
  control_socket: $T/control.sock
plugins:
  - module: http
    listen: 127.0.0.1
    port: $_ic_port
EOF
}
