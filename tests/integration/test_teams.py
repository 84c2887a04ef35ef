"""Team tokens under `kpool up`: `kpool team create|rotate|revoke|list` and the endpoints
behind them (/apis/kpool.dev/v1/teams, docs/api.md "Teams"), with the real binary against a
real control plane (test_control.KpoolUp: one `kpool up` for the module, stopped with SIGINT
and checked for sanitizer reports at teardown).

Covered:
  * create twice: the second is 409 AlreadyExists pointing at `kpool team rotate` (CLI: exit
    1, one line), and the first token keeps working;
  * rotate: the new token works, the old one gets 401 on its very next request; rotating a
    team without a token is 404 pointing at `kpool team create`;
  * revoke: every token of the team gets 401 at once, the team's Topic stays and is still
    reconciled (an admin's change reaches the pool); create then issues a fresh token;
  * a team token gets 403 on every teams endpoint, no token or a revoked one 401;
  * list: teams by token and namespaces with resources only, table / wide / json / yaml /
    name, by NAME; usage errors send nothing (exit 2);
  * no token ever appears in the server's log.
"""
import json
import re

import yaml

import harness
import test_control as T
from test_control import TOPICS_PATH, topic_doc

TEAMS = "/apis/kpool.dev/v1/teams"


up = harness.up_fixture(T.KpoolUp)


ISSUED = []  # every token a test saw issued: none may reach the log


def token_of(stdout):
    m = re.search(r"^token: ([0-9a-f]{64})$", stdout, re.M)
    assert m, stdout
    ISSUED.append(m.group(1))
    return m.group(1)


def create(up, name):
    p = up.kpool("team", "create", name)
    assert p.stdout.splitlines()[0] == "team/%s created" % name, p.stdout
    return token_of(p.stdout)


def can_read(up, ns, token):
    """The status of a team token listing its own namespace's Topics (200, or 401)."""
    code, _, body = up.http("GET", TOPICS_PATH % ns, token=token)
    assert code in (200, 401), (code, body)
    if code == 401:
        assert body["reason"] == "Unauthorized", body
    return code


def test_create_twice_is_409_and_first_token_still_works(up):
    tok = create(up, "tc-twice")
    assert can_read(up, "tc-twice", tok) == 200
    p = up.kpool("team", "create", "tc-twice", expect=1)
    assert p.stdout == ""
    assert p.stderr.startswith("Error from server (AlreadyExists): "), p.stderr
    assert "kpool team rotate tc-twice" in p.stderr and len(p.stderr.splitlines()) == 1
    code, _, body = up.api("POST", TEAMS, {"name": "tc-twice"})
    assert code == 409 and body["reason"] == "AlreadyExists" and "token" not in body, body
    # nothing was added: still exactly one token, and it is the first one
    assert can_read(up, "tc-twice", tok) == 200
    code, _, team = up.api("GET", TEAMS + "/tc-twice")
    assert code == 200 and team["status"]["tokens"] == 1 and "token" not in team, team


def test_rotate_old_token_401_new_token_works(up, tmp_path):
    old = create(up, "tc-rot")
    code, _, _ = up.http("PUT", TOPICS_PATH % "tc-rot" + "/mine", topic_doc("tc-rot", "mine"),
                         token=old)
    assert code == 201
    p = up.kpool("team", "rotate", "tc-rot")
    lines = p.stdout.splitlines()
    assert lines[0] == "team/tc-rot token rotated (1 previous token revoked)", p.stdout
    new = token_of(p.stdout)
    assert new != old
    assert can_read(up, "tc-rot", old) == 401  # the very next request
    assert can_read(up, "tc-rot", new) == 200
    code, _, obj = up.http("GET", TOPICS_PATH % "tc-rot" + "/mine", token=new)
    assert code == 200 and obj["metadata"]["name"] == "mine"  # the team's resources stay
    # -o json: the server's answer, with the new token and how many were revoked
    p = up.kpool("team", "rotate", "tc-rot", "-o", "json")
    ans = json.loads(p.stdout)
    assert ans["kind"] == "Team" and ans["revoked"] == 1 and len(ans["token"]) == 64, ans
    assert ans["status"]["tokens"] == 1 and ans["status"]["revokedTokens"] == 2, ans
    ISSUED.append(ans["token"])
    assert can_read(up, "tc-rot", new) == 401
    assert can_read(up, "tc-rot", ans["token"]) == 200
    ans = yaml.safe_load(up.kpool("team", "rotate", "tc-rot", "-o", "yaml").stdout)
    ISSUED.append(ans["token"])
    assert ans["revoked"] == 1 and can_read(up, "tc-rot", ans["token"]) == 200
    # a team without a token has nothing to rotate
    p = up.kpool("team", "rotate", "tc-never", expect=1)
    assert p.stderr.startswith("Error from server (NotFound): ") and \
        "kpool team create tc-never" in p.stderr, p.stderr
    assert up.api("POST", TEAMS + "/tc-never/rotate")[0] == 404
    assert up.api("GET", TEAMS + "/tc-never")[0] == 404  # and rotate did not invent it


def test_revoke_401_resources_stay_and_reconcile(up, tmp_path):
    tok = create(up, "tc-rev")
    code, _, _ = up.http("PUT", TOPICS_PATH % "tc-rev" + "/kept", topic_doc("tc-rev", "kept"),
                         token=tok)
    assert code == 201
    up.wait_status("tc-rev", "kept", "RolloutComplete")
    assert can_read(up, "tc-rev", tok) == 200
    p = up.kpool("team", "revoke", "tc-rev")
    assert p.stdout.splitlines()[0] == ("team/tc-rev: 1 token revoked; requests with it are "
                                        "refused (401) from now on."), p.stdout
    assert "resources stay" in p.stdout
    assert can_read(up, "tc-rev", tok) == 401
    code, _, _ = up.http("PUT", TOPICS_PATH % "tc-rev" + "/more", topic_doc("tc-rev", "more"),
                         token=tok)
    assert code == 401 and up.get(TOPICS_PATH, "tc-rev", "more") is None
    # the Topic stays and its reconciler keeps running: an admin's change reaches the pool
    assert up.get(TOPICS_PATH, "tc-rev", "kept") is not None
    code, _, _ = up.api("PUT", TOPICS_PATH % "tc-rev" + "/kept",
                        topic_doc("tc-rev", "kept", {"partitions": 2}))
    assert code == 200
    up.wait_pool(lambda: up.pool_topics().get("tc-rev.kept") == 2, "tc-rev.kept grew to 2")
    code, _, team = up.api("GET", TEAMS + "/tc-rev")
    assert code == 200 and team["status"]["tokens"] == 0, team
    assert team["status"]["revokedTokens"] == 1 and team["status"]["resources"] >= 1, team
    # nothing left to revoke or rotate; create issues a fresh token, the old one stays dead
    p = up.kpool("team", "revoke", "tc-rev", expect=1)
    assert p.stderr.startswith("Error from server (NotFound): "), p.stderr
    up.kpool("team", "rotate", "tc-rev", expect=1)
    fresh = create(up, "tc-rev")
    assert can_read(up, "tc-rev", fresh) == 200 and can_read(up, "tc-rev", tok) == 401
    # -o json of revoke: the Team with how many were revoked
    ans = json.loads(up.kpool("team", "revoke", "tc-rev", "-o", "json").stdout)
    assert ans["revoked"] == 1 and ans["status"]["tokens"] == 0 and "token" not in ans, ans
    assert can_read(up, "tc-rev", fresh) == 401


def test_team_token_is_forbidden_and_no_token_unauthorized(up):
    tok = create(up, "tc-nosy")
    create(up, "tc-victim")
    routes = (("GET", TEAMS, None), ("POST", TEAMS, {"name": "tc-new"}),
              ("GET", TEAMS + "/tc-victim", None), ("POST", TEAMS + "/tc-victim/rotate", None),
              ("DELETE", TEAMS + "/tc-victim", None), ("POST", TEAMS + "/tc-nosy/rotate", None),
              ("DELETE", TEAMS + "/tc-nosy", None))
    for method, path, body in routes:
        code, _, ans = up.http(method, path, body, token=tok)
        assert code == 403 and ans["reason"] == "Forbidden", (method, path, code, ans)
        for bad in (None, "0" * 64):
            code, _, ans = up.http(method, path, body, token=bad)
            assert code == 401 and ans["reason"] == "Unauthorized", (method, path, code, ans)
    # nothing happened: the victim's token count is unchanged, tc-new does not exist
    code, _, team = up.api("GET", TEAMS + "/tc-victim")
    assert team["status"]["tokens"] == 1 and team["status"]["revokedTokens"] == 0, team
    assert up.api("GET", TEAMS + "/tc-new")[0] == 404
    assert can_read(up, "tc-nosy", tok) == 200
    for args in (("list",), ("rotate", "tc-victim"), ("revoke", "tc-victim"),
                 ("create", "tc-new")):
        p = up.kpool("team", *args, "--token", tok, expect=1)
        assert p.stderr.startswith("Error from server (Forbidden): "), (args, p.stderr)


def test_list_teams_by_token_and_namespace(up, tmp_path):
    create(up, "tc-list-b")
    create(up, "tc-list-a")
    # a namespace with a resource but no token is a team too (TOKENS 0)
    up.apply(tmp_path, topic_doc("tc-list-res", "t1"), topic_doc("tc-list-res", "t2"))
    p = up.kpool("team", "list")
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["NAME", "TOKENS", "CREATED", "RESOURCES"], p.stdout
    rows = {ln.split()[0]: ln.split() for ln in lines[1:]}
    names = [ln.split()[0] for ln in lines[1:]]
    assert names == sorted(names)
    assert rows["tc-list-a"][1] == "1" and rows["tc-list-a"][3] == "0", rows
    assert rows["tc-list-b"][1] == "1"
    assert rows["tc-list-res"][1] == "0" and rows["tc-list-res"][3] == "2", rows
    assert re.fullmatch(r"\d+s", rows["tc-list-a"][2]), rows  # an age, made just now
    p = up.kpool("team", "list", "-o", "wide")
    assert p.stdout.splitlines()[0].split() == ["NAME", "TOKENS", "CREATED", "RESOURCES",
                                                "TOKEN", "AGE", "REVOKED"], p.stdout
    lst = json.loads(up.kpool("team", "list", "-o", "json").stdout)
    assert lst["kind"] == "TeamList"
    byname = {i["metadata"]["name"]: i for i in lst["items"]}
    assert {"tc-list-a", "tc-list-b", "tc-list-res"} <= set(byname)
    assert all("token" not in i for i in lst["items"])
    assert byname["tc-list-res"]["status"]["resources"] == 2
    y = yaml.safe_load(up.kpool("team", "list", "-o", "yaml").stdout)
    assert y["kind"] == "TeamList" and len(y["items"]) == len(lst["items"])
    p = up.kpool("team", "list", "-o", "name")
    assert "team/tc-list-a\n" in p.stdout and "team/tc-list-res\n" in p.stdout
    # by name: one object in json; an unknown name fails, the known ones are still shown
    one = json.loads(up.kpool("team", "list", "tc-list-a", "-o", "json").stdout)
    assert one["kind"] == "Team" and one["metadata"]["name"] == "tc-list-a"
    p = up.kpool("team", "list", "tc-list-b", "tc-nobody", expect=1)
    assert [ln.split()[0] for ln in p.stdout.splitlines()[1:]] == ["tc-list-b"]
    assert 'Error from server (NotFound): teams "tc-nobody" not found' in p.stderr


def test_usage_errors_send_nothing_and_help(up):
    for args in (("team",), ("team", "rotate"), ("team", "revoke", "a", "b"),
                 ("team", "delete", "x"), ("team", "revoke", "Bad_Name"),
                 ("team", "create", "../x"), ("team", "create", "x", "-o", "wide"),
                 ("team", "list", "-o", "bogus"), ("team", "rotate", "x", "-n", "y")):
        p = up.kpool(*args, "--server", "http://127.0.0.1:1", expect=2)
        assert p.stderr.startswith("kpool team: ") and p.stdout == "", (args, p.stderr)
    p = up.kpool("team", "--help")
    assert p.stdout.startswith("Usage: kpool team create NAME")
    for sub in ("rotate NAME", "revoke NAME", "list [NAME...]", "AlreadyExists", "401"):
        assert sub in p.stdout, sub
    p = up.kpool("--help")
    assert "team create|rotate|revoke" in p.stdout and "team list" in p.stdout


def test_no_token_in_the_log(up):
    """Last: the tokens issued here and by the tests above, none in the server's output."""
    create(up, "tc-log")
    token_of(up.kpool("team", "rotate", "tc-log").stdout)
    up.kpool("team", "revoke", "tc-log")
    log = up.log()
    assert "token issued" in log  # the log does record the events (without the tokens)
    for tok in ISSUED:
        assert tok not in log
