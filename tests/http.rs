//! The `http:` action (and uWSGI's `curl:` for http(s) URLs) against a real
//! HTTP server on 127.0.0.1, which each test starts itself: Python's
//! `http.server` (threaded, HTTP/1.1 keep-alive), answering from a script
//! (`500,200`: a 500, then 200 for every request after; `429:1`: a 429 with
//! `Retry-After: 1`; `slow:3`: answer 200 after 3 s; the path `/status/CODE`
//! always answers CODE), and printing each request it receives as one JSON
//! line. HTTPS uses a self-signed certificate made by `openssl req` for the
//! test.
//!
//! Proven: method, path, body, Basic auth, headers, `Idempotency-Key`; TOML
//! headers and body template; `ssl_insecure` needed and honoured; outages
//! (server down at start, killed mid-stream, too slow, 500 then 200, 429
//! with `Retry-After`) delivered once the server answers, with a `cmd:` alarm
//! on the same lines unaffected; `on_failure`; the drain deadline; secrets
//! never in stderr nor in `check` output.

mod common;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Done, Logalarm, header, sh_quote, summary};

use common::http_server::Server;

/// The binary, with no proxy from the environment (the tests talk to
/// 127.0.0.1 only).
fn logalarm() -> Logalarm {
    [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ]
    .into_iter()
    .fold(Logalarm::new(), Logalarm::env_remove)
}

/// Runs logalarm with `args` over `input` to its end.
fn run(args: &[&str], input: &str) -> Done {
    logalarm().args(args).run(input)
}

/// stdout and stderr (as written) of a run, one after the other.
fn both(done: &Done) -> String {
    format!(
        "{}{}",
        done.stdout_text(),
        String::from_utf8_lossy(&done.stderr)
    )
}

/// `logalarm check` of `config`: exit code and stdout + stderr.
fn check(config: &Path) -> (Option<i32>, String) {
    let out = logalarm().arg("check").arg("-c").arg(config).output();
    (out.code(), both(&out))
}

/// An `Idempotency-Key` as logalarm makes them: RUN-ALARM-SEQ, RUN 16 hex digits.
fn assert_idempotency_key(key: &str) {
    let parts: Vec<&str> = key.split('-').collect();
    assert_eq!(parts.len(), 3, "{key}");
    assert_eq!(parts[0].len(), 16, "{key}");
    assert!(parts[0].bytes().all(|b| b.is_ascii_hexdigit()), "{key}");
    assert!(parts[1..].iter().all(|p| p.parse::<u64>().is_ok()), "{key}");
}

/// Config lines shared by the outage tests: a hook retried quickly and a
/// `cmd:` alarm on the same lines, appending them to `local`.
fn outage_config(dir: &Path, url: &str, hook_extra: &str, local: &Path) -> PathBuf {
    let config = dir.join("outage.toml");
    std::fs::write(
        &config,
        format!(
            "alarm_freq = 0\n\
             drain_timeout = \"10s\"\n\
             [alarm.hook]\n\
             action = \"http:{url}\"\n\
             retry = {{ attempts = 100, deadline = \"15s\", delay = \"100ms\", max_delay = \"300ms\" }}\n\
             timeout = \"2s\"\n\
             conn_timeout = 1\n\
             {hook_extra}\n\
             [alarm.local]\n\
             action = \"cmd:cat >> {}\"\n\
             [[rule]]\n\
             regex = \"ALARM\"\n\
             alarms = [\"hook\", \"local\"]\n",
            sh_quote(local)
        ),
    )
    .expect("write config");
    config
}

#[test]
fn uwsgi_form_posts_the_line_with_basic_auth_and_an_idempotency_key() {
    let dir = common::scratch("http_uwsgi_form");
    let port = common::free_port();
    let server = Server::start(&dir, port, "200", None);
    let ini = dir.join("alarms.ini");
    std::fs::write(
        &ini,
        format!(
            "[uwsgi]\n\
             alarm = hook curl:http://127.0.0.1:{port}/hook;auth_user=foo;auth_pass=bar\n\
             log-alarm = hook ^TERRIBLE\n\
             alarm-freq = 0\n"
        ),
    )
    .unwrap();
    let done = run(
        &["-c", ini.to_str().unwrap()],
        "TERRIBLE ALARM one\nnothing\nTERRIBLE ALARM two \"quoted\" é\n",
    );
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr_text());
    assert_eq!(summary(done.stderr_lines(), "hook"), (2, 0, 0, 0));
    let (one, two) = (server.next("line one"), server.next("line two"));
    for (request, body) in [
        (&one, "TERRIBLE ALARM one\n"),
        (&two, "TERRIBLE ALARM two \"quoted\" é\n"),
    ] {
        assert_eq!(request["method"], "POST");
        assert_eq!(request["path"], "/hook");
        assert_eq!(request["body"], body);
        assert_eq!(header(request, "authorization"), "Basic Zm9vOmJhcg==");
        assert_eq!(header(request, "content-type"), "text/plain; charset=utf-8");
        assert!(header(request, "user-agent").starts_with("logalarm/"));
        assert_idempotency_key(header(request, "idempotency-key"));
    }
    assert_ne!(
        header(&one, "idempotency-key"),
        header(&two, "idempotency-key")
    );
    assert_eq!(server.rest(), Vec::<Value>::new());
    // `check` shows the action with the password hidden.
    let (code, shown) = check(&ini);
    assert_eq!(code, Some(0), "{shown}");
    assert!(
        shown.contains(&format!(
            "curl:http://127.0.0.1:{port}/hook;auth_user=foo;auth_pass=***"
        )),
        "{shown}"
    );
    assert!(!shown.contains("auth_pass=bar"), "{shown}");
}

#[test]
fn toml_method_headers_body_template_and_secrets_from_env() {
    let dir = common::scratch("http_toml");
    let port = common::free_port();
    let closed = common::free_port();
    let server = Server::start(&dir, port, "200", None);
    let token_file = dir.join("token");
    std::fs::write(&token_file, "file-s3cret\n").unwrap();
    let config = dir.join("hook.toml");
    std::fs::write(
        &config,
        format!(
            r#"alarm_freq = 0
[alarm.hook]
action = "http:http://127.0.0.1:{port}/api/alarms?team=ops"
method = "PUT"
auth_user = "hook"
auth_pass = "env:HOOK_PASS"
headers = {{ "Content-Type" = "application/json", X-Token = "file:{}", X-Team = "ops" }}
body = '{{"alarm": {{{{ alarm | tojson }}}}, "text": {{{{ line | tojson }}}}, "id": {{{{ id | tojson }}}}, "source": {{{{ source | tojson }}}}, "host": {{{{ host | tojson }}}}}}'
[alarm.down]
action = "http:http://u:url-s3cret@127.0.0.1:{closed}/;auth_user=x"
retry = {{ attempts = 2, delay = "50ms" }}
[[rule]]
regex = "ALARM"
alarms = ["hook", "down"]
"#,
            token_file.display()
        ),
    )
    .unwrap();
    let out = logalarm()
        .arg("-c")
        .arg(&config)
        .env("HOOK_PASS", "env-s3cret-Pa55")
        .run(b"ALARM disk \"full\" on /var\n");
    let stderr = out.stderr_lines();
    let text = stderr.join("\n");
    assert_eq!(out.code(), Some(0), "{text}");
    assert_eq!(summary(stderr, "hook"), (1, 0, 0, 0));
    assert_eq!(summary(stderr, "down"), (0, 1, 0, 0));
    let request = server.next("the hook");
    assert_eq!(request["method"], "PUT");
    assert_eq!(request["path"], "/api/alarms?team=ops");
    assert_eq!(header(&request, "content-type"), "application/json");
    assert_eq!(header(&request, "x-team"), "ops");
    assert_eq!(header(&request, "x-token"), "file-s3cret");
    assert_eq!(
        header(&request, "authorization"),
        "Basic aG9vazplbnYtczNjcmV0LVBhNTU="
    );
    let body: Value = serde_json::from_str(request["body"].as_str().unwrap()).expect("JSON body");
    assert_eq!(
        body,
        json!({
            "alarm": "hook",
            "text": "ALARM disk \"full\" on /var",
            "id": header(&request, "idempotency-key"),
            "source": "stdin",
            "host": null,
        })
    );
    // The failed one says why, with the URL's password hidden; no secret anywhere.
    assert!(
        text.contains(&format!(
            "http: POST http://u:***@127.0.0.1:{closed}/: error sending request"
        )),
        "{text}"
    );
    let (code, shown) = check(&config);
    assert_eq!(code, Some(2), "HOOK_PASS unset: {shown}");
    assert!(shown.contains("HOOK_PASS is not set"), "{shown}");
    let checked = logalarm()
        .args(["check", "-c"])
        .arg(&config)
        .env("HOOK_PASS", "env-s3cret-Pa55")
        .output();
    let shown = both(&checked);
    assert_eq!(checked.code(), Some(0), "{shown}");
    assert!(
        shown.contains("retried: 2 attempts within 5m, waits 50ms to 1m (plus jitter)"),
        "{shown}"
    );
    for secret in ["env-s3cret-Pa55", "file-s3cret", "url-s3cret"] {
        assert!(!text.contains(secret), "{secret} in stderr: {text}");
        assert!(!shown.contains(secret), "{secret} in check: {shown}");
    }
}

#[test]
fn https_needs_ssl_insecure_for_a_self_signed_certificate() {
    let dir = common::scratch("http_tls");
    let tls = common::self_signed(&dir);
    let port = common::free_port();
    let server = Server::start(&dir, port, "200", Some(&tls));
    let config = dir.join("tls.toml");
    std::fs::write(
        &config,
        format!(
            "alarm_freq = 0\n\
             [alarm.insecure]\n\
             action = \"curl:https://127.0.0.1:{port}/insecure;method=POST;ssl_insecure=true\"\n\
             [alarm.strict]\n\
             action = \"curl:https://127.0.0.1:{port}/strict\"\n\
             retry = {{ attempts = 5, delay = \"50ms\" }}\n\
             [[rule]]\n\
             regex = \"ALARM\"\n\
             alarms = [\"insecure\", \"strict\"]\n"
        ),
    )
    .unwrap();
    let done = run(&["-c", config.to_str().unwrap()], "ALARM over TLS\n");
    let text = done.stderr_text();
    assert_eq!(done.status.code(), Some(0), "{text}");
    assert_eq!(summary(done.stderr_lines(), "insecure"), (1, 0, 0, 0));
    assert_eq!(summary(done.stderr_lines(), "strict"), (0, 1, 0, 0));
    let request = server.next("the insecure alarm");
    assert_eq!(request["path"], "/insecure");
    assert_eq!(request["body"], "ALARM over TLS\n");
    // The certificate error is permanent: one attempt, no request reached the server.
    let failed: Vec<&String> = done
        .stderr_lines()
        .iter()
        .filter(|l| l.contains("alarm=strict") && l.contains("delivery failed"))
        .collect();
    assert_eq!(failed.len(), 1, "{text}");
    assert!(failed[0].contains("certificate"), "{}", failed[0]);
    assert!(failed[0].contains("ssl_insecure=true"), "{}", failed[0]);
    assert!(
        failed[0].contains("permanent, not retried"),
        "{}",
        failed[0]
    );
    assert!(
        !done
            .stderr_lines()
            .iter()
            .any(|l| l.contains("alarm=strict") && l.contains("attempt 1 of")),
        "{text}"
    );
    assert_eq!(server.rest(), Vec::<Value>::new());
}

#[test]
fn a_server_down_at_start_gets_the_alarm_when_it_comes_up() {
    let dir = common::scratch("http_down_at_start");
    let port = common::free_port();
    let local = dir.join("local.out");
    let config = outage_config(&dir, &format!("http://127.0.0.1:{port}/late"), "", &local);
    let mut live = logalarm().arg("-c").arg(&config).stdin_piped().start();
    live.write_stdin("ALARM while the server is down\n");
    // The other alarm is not held up, and the hook is being retried.
    assert_eq!(
        common::wait_for_lines(&local, 1),
        ["ALARM while the server is down"]
    );
    live.wait_for_stderr_line("a retried attempt", |l| {
        l.contains("alarm=hook")
            && l.contains("attempt 2 of 100 failed")
            && l.contains("Connection refused")
    });
    let server = Server::start(&dir, port, "200", None);
    let request = server.next("the retried alarm");
    assert_eq!(request["body"], "ALARM while the server is down\n");
    live.write_stdin("ALARM after it came up\n");
    assert_eq!(
        server.next("the next alarm")["body"],
        "ALARM after it came up\n"
    );
    assert_eq!(common::wait_for_lines(&local, 2).len(), 2);
    live.close_stdin();
    let done = live.finish();
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr_text());
    assert_eq!(summary(done.stderr_lines(), "hook"), (2, 0, 0, 0));
    assert_eq!(summary(done.stderr_lines(), "local"), (2, 0, 0, 0));
    assert_eq!(server.rest(), Vec::<Value>::new());
}

#[test]
fn a_server_killed_mid_stream_gets_the_rest_in_order_after_its_restart() {
    let dir = common::scratch("http_killed");
    let port = common::free_port();
    let local = dir.join("local.out");
    let config = outage_config(&dir, &format!("http://127.0.0.1:{port}/"), "", &local);
    let server = Server::start(&dir, port, "200", None);
    let mut live = logalarm().arg("-c").arg(&config).stdin_piped().start();
    live.write_stdin("ALARM 1\n");
    let mut received = vec![server.next("ALARM 1")];
    // Killed right after it read ALARM 1, maybe before it answered: then
    // ALARM 1 is sent again (at least once, with the same Idempotency-Key).
    server.kill();
    for i in 2..=4 {
        live.write_stdin(format!("ALARM {i}\n"));
    }
    assert_eq!(
        common::wait_for_lines(&local, 4).len(),
        4,
        "cmd: not held up"
    );
    live.wait_for_stderr_line("a failed attempt", |l| {
        l.contains("alarm=hook") && l.contains("attempt 1 of 100 failed")
    });
    let server = Server::start(&dir, port, "200", None);
    while received.last().is_none_or(|r| r["body"] != "ALARM 4\n") {
        received.push(server.next("ALARM 2 to 4"));
    }
    // In order, each once but for a repeat of the request the kill cut short.
    let mut keys: Vec<&str> = Vec::new();
    let mut bodies: Vec<&str> = Vec::new();
    for r in &received {
        let key = header(r, "idempotency-key");
        match keys.iter().position(|k| *k == key) {
            Some(i) => assert_eq!(r["body"], bodies[i], "same key, same alarm"),
            None => {
                keys.push(key);
                bodies.push(r["body"].as_str().unwrap());
            }
        }
    }
    assert_eq!(bodies, ["ALARM 1\n", "ALARM 2\n", "ALARM 3\n", "ALARM 4\n"]);
    assert!(received.len() <= 5, "{received:#?}");
    live.close_stdin();
    let done = live.finish();
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr_text());
    assert_eq!(summary(done.stderr_lines(), "hook"), (4, 0, 0, 0));
    assert_eq!(summary(done.stderr_lines(), "local"), (4, 0, 0, 0));
    assert_eq!(server.rest(), Vec::<Value>::new(), "each delivered once");
}

#[test]
fn a_server_slower_than_the_timeout_is_retried() {
    let dir = common::scratch("http_slow");
    let port = common::free_port();
    let server = Server::start(&dir, port, "slow:3,200", None);
    let local = dir.join("local.out");
    let config = outage_config(&dir, &format!("http://127.0.0.1:{port}/"), "", &local);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("timeout = \"2s\"", "timeout = \"500ms\"");
    std::fs::write(&config, text).unwrap();
    let started = Instant::now();
    let done = run(&["-c", config.to_str().unwrap()], "ALARM slow\n");
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr_text());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "not cut at 500ms"
    );
    assert_eq!(summary(done.stderr_lines(), "hook"), (1, 0, 0, 0));
    let (first, second) = (server.next("the slow attempt"), server.next("the retry"));
    assert_eq!(
        (&first["step"], &second["step"]),
        (&json!("slow:3"), &json!("200"))
    );
    assert_eq!(
        header(&first, "idempotency-key"),
        header(&second, "idempotency-key")
    );
    assert!(
        done.stderr_lines()
            .iter()
            .any(|l| l.contains("attempt 1 of 100 failed") && l.contains("within 500ms (timeout)")),
        "{}",
        done.stderr_text()
    );
    assert_eq!(std::fs::read_to_string(&local).unwrap(), "ALARM slow\n");
}

#[test]
fn server_errors_are_retried_until_it_answers_200() {
    let dir = common::scratch("http_500");
    let port = common::free_port();
    let server = Server::start(&dir, port, "500,502,200", None);
    let local = dir.join("local.out");
    let config = outage_config(&dir, &format!("http://127.0.0.1:{port}/"), "", &local);
    let done = run(&["-c", config.to_str().unwrap()], "ALARM flaky\n");
    let text = done.stderr_text();
    assert_eq!(done.status.code(), Some(0), "{text}");
    let requests: Vec<Value> = (0..3)
        .map(|i| server.next(&format!("attempt {i}")))
        .collect();
    let steps: Vec<&str> = requests
        .iter()
        .map(|r| r["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["500", "502", "200"]);
    let keys: Vec<&str> = requests
        .iter()
        .map(|r| header(r, "idempotency-key"))
        .collect();
    assert!(keys.iter().all(|k| *k == keys[0]), "{keys:?}");
    assert!(
        text.contains(
            ": 500 Internal Server Error: {\"error\": \"scripted 500\"} (transient); next in"
        ),
        "{text}"
    );
    let line = done
        .stderr_lines()
        .iter()
        .find(|l| l.contains("alarm=hook") && l.contains(" delivered, "))
        .unwrap();
    assert!(line.ends_with(", 2 attempts retried"), "{line}");
    assert_eq!(summary(done.stderr_lines(), "hook"), (1, 0, 0, 0));
    assert_eq!(server.rest(), Vec::<Value>::new());
}

#[test]
fn too_many_requests_waits_as_long_as_retry_after_says() {
    let dir = common::scratch("http_429");
    let port = common::free_port();
    let server = Server::start(&dir, port, "429:1,200", None);
    let local = dir.join("local.out");
    let config = outage_config(&dir, &format!("http://127.0.0.1:{port}/"), "", &local);
    let done = run(&["-c", config.to_str().unwrap()], "ALARM busy\n");
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr_text());
    let (first, second) = (server.next("the 429"), server.next("the retry"));
    let gap = second["at"].as_f64().unwrap() - first["at"].as_f64().unwrap();
    // Backoff alone would wait 100–200 ms.
    assert!((1.0..3.0).contains(&gap), "retried after {gap} s");
    assert!(
        done.stderr_text().contains("429 Too Many Requests"),
        "{}",
        done.stderr_text()
    );
    assert_eq!(summary(done.stderr_lines(), "hook"), (1, 0, 0, 0));
}

#[test]
fn failures_for_good_go_to_the_on_failure_alarm() {
    let dir = common::scratch("http_on_failure");
    let port = common::free_port();
    let server = Server::start(&dir, port, "200", None);
    let config = dir.join("fallback.toml");
    std::fs::write(
        &config,
        format!(
            "alarm_freq = 0\n\
             [alarm.dead]\n\
             action = \"http:http://127.0.0.1:{port}/status/500\"\n\
             retry = {{ attempts = 3, delay = \"50ms\" }}\n\
             on_failure = \"backup\"\n\
             [alarm.gone]\n\
             action = \"http:http://127.0.0.1:{port}/status/404\"\n\
             retry = {{ attempts = 3, delay = \"50ms\" }}\n\
             on_failure = \"backup\"\n\
             [alarm.backup]\n\
             action = \"log:BACKUP\"\n\
             [[rule]]\n\
             regex = \"ALARM\"\n\
             alarms = [\"dead\", \"gone\"]\n"
        ),
    )
    .unwrap();
    let done = run(&["-c", config.to_str().unwrap()], "ALARM nobody hears\n");
    let text = done.stderr_text();
    assert_eq!(done.status.code(), Some(0), "{text}");
    assert_eq!(
        common::alarm_lines(done.stderr_lines()),
        [
            "[logalarm] ALARM: BACKUP ALARM nobody hears",
            "[logalarm] ALARM: BACKUP ALARM nobody hears"
        ]
    );
    assert_eq!(summary(done.stderr_lines(), "dead"), (0, 1, 0, 0));
    assert_eq!(summary(done.stderr_lines(), "gone"), (0, 1, 0, 0));
    assert_eq!(summary(done.stderr_lines(), "backup"), (2, 0, 0, 0));
    let mut paths: Vec<String> = server
        .rest()
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_owned())
        .collect();
    paths.sort();
    // 500 three times (the attempts), 404 once (permanent).
    assert_eq!(
        paths,
        ["/status/404", "/status/500", "/status/500", "/status/500"]
    );
    assert!(
        text.contains("404 Not Found: {\"error\": \"scripted 404\"}; permanent, not retried"),
        "{text}"
    );
    assert!(
        text.contains("no attempts left; gave up after 3 attempts"),
        "{text}"
    );
    let (code, shown) = check(&config);
    assert_eq!(code, Some(0), "{shown}");
    assert!(
        shown.contains(
            "retried: 3 attempts within 5m, waits 50ms to 1m (plus jitter); on failure: backup"
        ),
        "{shown}"
    );
    assert!(
        done.stderr_lines()
            .iter()
            .any(|l| l.contains("alarm=dead") && l.ends_with("1 failed handed to on_failure")),
        "{text}"
    );
}

#[test]
fn a_retry_wait_does_not_hold_up_the_drain_deadline() {
    let dir = common::scratch("http_drain");
    let port = common::free_port();
    let local = dir.join("local.out");
    let config = outage_config(&dir, &format!("http://127.0.0.1:{port}/"), "", &local);
    let started = Instant::now();
    let done = run(
        &["-c", config.to_str().unwrap(), "--drain-timeout", "1s"],
        "ALARM into the void\n",
    );
    let took = started.elapsed();
    let text = done.stderr_text();
    assert_eq!(done.status.code(), Some(1), "{text}");
    assert!(took < Duration::from_secs(8), "took {took:?}");
    assert!(
        text.contains("alarm=hook: 1 notifications not delivered within the drain deadline of 1s"),
        "{text}"
    );
    let (delivered, failed, _, _) = summary(done.stderr_lines(), "hook");
    assert_eq!((delivered, failed), (0, 0), "pending, not failed");
    assert_eq!(summary(done.stderr_lines(), "local"), (1, 0, 0, 0));
}

#[test]
fn config_errors_name_the_key() {
    let dir = common::scratch("http_config_errors");
    let config = dir.join("bad.toml");
    std::fs::write(
        &config,
        "[alarm.a]\n\
         action = \"http:http://127.0.0.1:9/\"\n\
         body = \"{{ line \"\n\
         [alarm.b]\n\
         action = \"http:http://127.0.0.1:9/\"\n\
         methd = \"PUT\"\n\
         [alarm.c]\n\
         action = \"curl:smtp://127.0.0.1:25;mail_to=a@example.com\"\n\
         [alarm.d]\n\
         action = \"http:http://127.0.0.1:9/;mail_to=a@example.com\"\n\
         [alarm.e]\n\
         action = \"cmd:true\"\n\
         headers = { X = \"y\" }\n\
         [[rule]]\n\
         regex = \"x\"\n\
         alarms = [\"a\", \"b\", \"c\", \"d\", \"e\"]\n",
    )
    .unwrap();
    let (code, text) = check(&config);
    assert_eq!(code, Some(2), "{text}");
    let path = config.display();
    for expected in [
        format!("{path}:2: alarm.a.action: `body` template: syntax error"),
        format!("{path}:6: alarm.b.methd: unknown key `methd`"),
        format!("{path}:8: alarm.c.action: smtp: mail_from= is missing"),
        format!("{path}:10: alarm.d.action: `mail_to` is for mail (smtp:// URLs), not for http(s)"),
        format!(
            "{path}:12: alarm.e.action: `headers` is not for this alarm: the cmd plugin takes env"
        ),
    ] {
        assert!(text.contains(&expected), "{expected:?} not in:\n{text}");
    }
}
