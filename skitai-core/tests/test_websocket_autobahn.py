"""The Autobahn TestSuite's cases (kosoku's fuzzing client) against a Skitai WebSocket echo
server: all of 1.* to 10.* and 36 of the 216 compression cases, about 20 s on two cores.
`python skitai-core/tests/autobahn_suite.py --all` runs every case (see that file)."""
from autobahn_suite import ECHO_SERVER, QUICK_CASES, case_key, describe_failures, failures, kosoku_command, run_kosoku

from skitai.testing import ServerProcess, requires


@requires(None if kosoku_command() else "kosoku is not installed (CI: pip install -r requirements-test.txt)")
def test_autobahn_testsuite_cases_pass(tmp_path):
    with ServerProcess(str(ECHO_SERVER)) as server:
        cases = run_kosoku(f"ws://127.0.0.1:{server.port}/", QUICK_CASES, outdir=tmp_path / "report",
                           parallelism=2, timeout=240)
    assert server.returncode == 0, server.output[-3000:]
    bad = failures(cases)
    assert not bad, (f"{len(bad)} of {len(cases)} Autobahn cases failed: {', '.join(bad)}\n"
                     f"{describe_failures(cases)}\n(report: {tmp_path / 'report' / 'index.html'})")
    groups = {case_key(case_id)[0] for case_id in cases}
    assert groups == {1, 2, 3, 4, 5, 6, 7, 9, 10, 12, 13}
    assert len(cases) >= 300
