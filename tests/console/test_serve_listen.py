"""`gc-console serve` on a port another program holds says so and exits, before it records anything."""

import socket

from tools.console.__main__ import main


def test_a_port_in_use_is_said_and_nothing_starts(tmp_path, capsys):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        code = main(["serve", "--db", str(tmp_path / "c.db"), "--mqtt-port", "0",
                     "--listen", "127.0.0.1:%d" % port, "--duration", "1s"])
    finally:
        holder.close()
    err = capsys.readouterr().err
    assert code == 2, err
    assert "cannot listen on 127.0.0.1:%d" % port in err
    assert "web console at" not in err and "embedded broker" not in err
