//! `-p` never publishes wider than asked: an address that is not an IP
//! (`localhost`, `127.0.1`) is refused as `docker run` refuses it, and so
//! is an empty one (an unset variable in a unit), instead of becoming
//! 0.0.0.0 and [::].

mod support;

use fleetkit_tests::docker::{busybox_image, Containers};
use fleetkit_tests::port::free_port;
use support::run;

#[test]
fn an_address_that_is_not_an_ip_is_refused_and_nothing_is_published() {
    let guard = Containers::new("bad-ip");
    let port = free_port();
    for ip in ["localhost", "127.0.1", "1.2.3", "", "[]", "[localhost]", "01.2.3.4"] {
        let spec = format!("{ip}:{port}:80");
        let ended = run(&["--label", &guard.label(), "-p", &spec, &busybox_image(), "true"]);
        assert_eq!(ended.code, Some(125), "{spec}: stderr: {}", ended.stderr);
        assert!(ended.stderr.starts_with(&format!("dockrun: -p \"{spec}\": ")), "{}", ended.stderr);
        assert!(ended.stderr.contains("127.0.0.1:"), "shows a valid form: {}", ended.stderr);
        assert!(ended.stderr.contains("[::1]:"), "shows a valid IPv6 form: {}", ended.stderr);
        assert_eq!(guard.count(), 0, "{spec}: no container was created");
    }
}

#[test]
fn published_ports_on_the_host_network_are_refused() {
    let guard = Containers::new("host-net");
    let spec = format!("127.0.0.1:{}:80", free_port());
    let ended = run(&["--label", &guard.label(), "--network", "host", "-p", &spec, &busybox_image(), "true"]);
    assert_eq!(ended.code, Some(125), "stderr: {}", ended.stderr);
    assert!(ended.stderr.contains("--network host"), "{}", ended.stderr);
    assert_eq!(guard.count(), 0);
}
