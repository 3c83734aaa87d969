# lib-imaging.sh - for the imaging server's shell tests (tests/test-imaging-*.sh; sourced
# after tap.sh, with B the build directory, T the test's directory and port set).

# imaging_config_head STATE-DIR: the start of a prebootd configuration, to stdout: the daemon
# section (its files under T, the http, imaging and local backend modules of B) and the http
# plugin on 127.0.0.1:port. The caller goes on with more http options or the next plugin.
imaging_config_head() {
    cat <<EOF
daemon:
  plugin_path: [$B/plugins/http/.libs, $B/plugins/imaging/.libs, $B/backends/local/.libs]
  log_dir: $T/log
  state_dir: $1
  pid_file: $T/prebootd.pid
  control_socket: $T/control.sock
plugins:
  - module: http
    listen: 127.0.0.1
    port: $port
EOF
}
