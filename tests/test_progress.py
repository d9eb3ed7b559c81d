from seq2seq.progress import progress_bar


def test_progress_bar_shows_only_when_asked_or_on_a_terminal(capsys, monkeypatch):
    assert progress_bar(10, False, desc="decoding", unit="sent").disable
    monkeypatch.setattr("sys.stderr.isatty", lambda: False)
    assert progress_bar(10, None, desc="decoding", unit="sent").disable  # a pipe or a log file
    assert capsys.readouterr().err == ""  # disabled bars print nothing
    with progress_bar(10, True, desc="decoding", unit="sent") as bar:
        bar.update(4)
        bar.update(6)
        assert bar.n == bar.total == 10
    err = capsys.readouterr().err
    assert "decoding:" in err and "/10 [" in err  # on stderr, with the total


def test_a_resumed_count_starts_where_it_stopped(capsys, monkeypatch):
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    with progress_bar(200, None, desc="training", unit="step", initial=150) as bar:
        bar.update(1)
        assert bar.n == 151
    err = capsys.readouterr().err
    assert "150/200" in err and "0/200" not in err.replace("150/200", "")  # not from 0
