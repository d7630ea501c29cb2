//! `socle extract` with the `scrape` connector against the fixture's HTML job board:
//! items, next pages, detail pages, de-duplication, robots.txt and the crawl delay.

use crate::common::*;

fn board(base: &str, extra: &str) -> String {
    format!(
        r#"type: scrape
user_agent: "socle-test/1.0 (+mailto:data@example.org)"
delay: 50ms
{extra}
streams:
  jobs:
    start_urls: ["{base}/jobs-board/jobs?page=1", "{base}/jobs-board/private/admin"]
    item: article.job
    fields:
      id: {{ attr: data-id }}
      title: h2.title a
      url: {{ select: h2.title a, attr: href, url: true }}
      company: .company
      location: .location
      tags: {{ select: ul.tags li, all: true }}
      posted: {{ select: time, attr: datetime }}
    next: a.next[rel=next]
    detail:
      link: h2.title a
      fields:
        salary: dd.salary
        contract: dd.contract
        description: {{ select: div.description, html: true }}
    key: id
    write: merge
    primary_key: [id]
"#
    )
}

#[test]
fn job_board_pages_details_dedupe_and_robots() {
    let site = HttpFixture::start(&["--crawl-delay", "0.2"]);
    let (_tmp, dir) = project();
    write(&dir, "sources/board.yml", &board(&site.base(), ""));
    let reports = extract_json(&dir, &[]);
    let r = report(&reports, "jobs");
    // 29 cards, J116 twice: 28 jobs.
    assert_eq!(r["rows_inserted"], 28, "{r}");
    let rows = query(
        &dir,
        "select count(*) as n, count(salary) as paid, min(id) as first, max(id) as last, \
         count(distinct url) as urls from raw.board__jobs",
    );
    assert_eq!(rows[0]["n"], 28);
    // No salary on J104, J108, ..., J128.
    assert_eq!(rows[0]["paid"], 21);
    assert_eq!(rows[0]["first"], "J101");
    assert_eq!(rows[0]["last"], "J128");
    assert_eq!(rows[0]["urls"], 28);
    let one = query(
        &dir,
        "select title, url, posted, tags, description, salary from raw.board__jobs where id = 'J101'",
    );
    assert_eq!(one[0]["title"], "Data Engineer");
    assert_eq!(
        one[0]["url"],
        format!("{}/jobs-board/job/J101", site.base())
    );
    assert!(
        one[0]["tags"].as_str().unwrap().starts_with("[\""),
        "{one:?}"
    );
    assert!(
        one[0]["description"].as_str().unwrap().contains("<p>"),
        "{one:?}"
    );
    assert!(one[0]["salary"].as_str().unwrap().contains('€'), "{one:?}");

    let stats = site.stats();
    let log = stats["log"].as_array().unwrap();
    let paths: Vec<&str> = log.iter().map(|l| l["path"].as_str().unwrap()).collect();
    assert!(!paths.iter().any(|p| p.contains("/private/")), "{paths:?}");
    assert_eq!(paths.iter().filter(|p| **p == "/robots.txt").count(), 1);
    assert_eq!(
        paths
            .iter()
            .filter(|p| p.starts_with("/jobs-board/jobs"))
            .count(),
        4
    );
    assert_eq!(
        paths
            .iter()
            .filter(|p| p.starts_with("/jobs-board/job/"))
            .count(),
        28
    );
    assert!(
        log.iter()
            .all(|l| l["user_agent"] == "socle-test/1.0 (+mailto:data@example.org)")
    );
    // robots.txt's Crawl-delay (0.2 s) wins over the configured 50 ms.
    let times: Vec<f64> = log
        .iter()
        .filter(|l| l["path"] != "/robots.txt")
        .map(|l| l["time"].as_f64().unwrap())
        .collect();
    let gap = times
        .windows(2)
        .map(|w| w[1] - w[0])
        .fold(f64::MAX, f64::min);
    assert!(gap >= 0.18, "requests {gap} s apart");

    // Without robots.txt the private page is read (it has no job cards).
    site.reset();
    write(
        &dir,
        "sources/board.yml",
        &board(&site.base(), "robots: false").replace("delay: 50ms", "delay: 0s"),
    );
    extract_json(&dir, &[]);
    let stats = site.stats();
    assert_eq!(stats["requests"]["/jobs-board/private/admin"], 1, "{stats}");
    assert!(stats["requests"].get("/robots.txt").is_none());

    // A robot robots.txt shuts out reads nothing.
    site.reset();
    write(
        &dir,
        "sources/board.yml",
        &board(&site.base(), "").replace("socle-test/1.0", "EvilBot/1.0"),
    );
    let reports = extract_json(&dir, &[]);
    assert_eq!(report(&reports, "jobs")["rows_read"], 0);
    let stats = site.stats();
    assert_eq!(stats["total"], 1, "only robots.txt: {stats}");
}
