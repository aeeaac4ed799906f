"""The Scrapy side of bench/crawl.py: a plain broad crawl of the same sites, the way a Scrapy user
would write it, with trafilatura extracting each page's text (the analogue of ccqm storing it).

Starts at each site's home page and follows every link within the site, obeying robots.txt, one
request at a time per site, no delay, to `--depth` links; each HTML page's text
(`trafilatura.extract`) is written with its URL to a JSON-lines feed. Runs in Scrapy's own venv
(bench/.venv-scrapy, which bench/crawl.py makes), not ccqm's.

    bench/.venv-scrapy/bin/python bench/scrapy_spider.py --depth 3 --out items.jsonl URL [URL ...]
"""

from __future__ import annotations

import argparse
from urllib.parse import urlsplit

import scrapy
import trafilatura
from scrapy.crawler import CrawlerProcess
from scrapy.http import HtmlResponse


class SitesSpider(scrapy.Spider):
    name = "sites"

    async def start(self):
        for url in self.start_urls:  # filtered like every other request: a link back home is not fetched again
            yield scrapy.Request(url, callback=self.parse)

    def parse(self, response):
        if not isinstance(response, HtmlResponse):
            return
        text = trafilatura.extract(response.text)
        if text:
            yield {"url": response.url, "text": text}
        host = urlsplit(response.url).netloc
        for href in response.css("a::attr(href)").getall():
            url = response.urljoin(href)
            if urlsplit(url).netloc == host:
                yield scrapy.Request(url, callback=self.parse)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, required=True, help="DEPTH_LIMIT: links followed from a home page")
    parser.add_argument("--out", required=True, help="the JSON-lines feed of {url, text}")
    parser.add_argument("urls", nargs="+", help="the sites' home pages")
    args = parser.parse_args()
    process = CrawlerProcess(settings={
        "ROBOTSTXT_OBEY": True,
        "CONCURRENT_REQUESTS": max(1000, len(args.urls)),  # never the limit: one request per site is
        "CONCURRENT_REQUESTS_PER_DOMAIN": 1,
        "DOWNLOAD_DELAY": 0,
        "DEPTH_LIMIT": args.depth,
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "LOG_LEVEL": "WARNING",
        "FEEDS": {args.out: {"format": "jsonlines", "encoding": "utf8"}},
    })
    process.crawl(SitesSpider, start_urls=args.urls)
    process.start()


if __name__ == "__main__":
    main()
