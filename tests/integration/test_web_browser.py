"""examples/contact-form.html in a real browser: headless Chromium (Debian's, driven by its chromedriver)
loads the page from a loopback web server, a person's keystrokes fill it in, and the post opens a
web ticket whose acknowledgement reaches the relay sink."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from .conftest import AGENTS, REPO, Cli, MakeDaemon, settle
from .sink import Sink, wait_mail
from .web import SHOP_TOKEN, web_section

pytestmark = pytest.mark.asyncio

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
FORM = REPO / "examples" / "contact-form.html"
# The example's placeholders, which an operator replaces with the public endpoint and the site token.
ACTION = "http://127.0.0.1:8025/v1/tickets"
TOKEN = "REPLACE-WITH-THE-SITE-TOKEN"
THANKS = b"<!DOCTYPE html><html lang='en'><head><title>Thanks</title></head><body><p>Thank you!</p></body></html>"


class Site:
    """The shop's web server: the contact form at / and the page the form returns to at /thanks."""

    def __init__(self) -> None:
        self.page = b""
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                if self.path not in ("/", "/thanks"):
                    self.send_error(404)
                    return
                body = site.page if self.path == "/" else THANKS
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def shop() -> Iterator[Site]:
    site = Site()
    thread = threading.Thread(target=site.server.serve_forever, name="shop-site", daemon=True)
    thread.start()
    try:
        yield site
    finally:
        site.server.shutdown()
        site.server.server_close()
        thread.join(timeout=10)


def fill_in_and_send(url: str, thanks: str) -> tuple[str, bool]:
    """What a person does: open the page, type into each visible field, press Send; where the browser lands."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    assert CHROMIUM is not None and CHROMEDRIVER is not None
    options.binary_location = CHROMIUM
    with tempfile.TemporaryDirectory(prefix="mailgate-chromium-") as profile:
        for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", f"--user-data-dir={profile}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
        try:
            driver.set_page_load_timeout(30)
            driver.get(url)
            honeypot_shown = driver.find_element(By.ID, "website").is_displayed()
            driver.find_element(By.ID, "name").send_keys("Päivi Customer")
            driver.find_element(By.ID, "email").send_keys("paivi@customer.test")
            driver.find_element(By.ID, "phone").send_keys("+358 50 765 4321")
            driver.find_element(By.ID, "subject").send_keys("Kettle leaks after a week")
            driver.find_element(By.ID, "message").send_keys("Hello,\nthe kettle I bought leaks from the bottom.\nPäivi")
            driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
            WebDriverWait(driver, 30).until(lambda d: d.current_url == thanks)
            return driver.current_url, honeypot_shown
        finally:
            driver.quit()


@pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                    reason="needs Debian's chromium and chromium-driver (.ci/run installs them)")
async def test_the_example_contact_form_in_a_browser(make_daemon: MakeDaemon, sink: Sink, cli: Cli, shop: Site) -> None:
    running = await make_daemon(AGENTS + web_section(origins=[shop.origin], redirect=f"{shop.origin}/thanks"))
    assert running.web is not None
    page = FORM.read_text(encoding="utf-8")
    assert ACTION in page and TOKEN in page
    shop.page = page.replace(ACTION, f"http://127.0.0.1:{running.web.port}/v1/tickets").replace(TOKEN, SHOP_TOKEN).encode()
    landed, honeypot_shown = await asyncio.to_thread(fill_in_and_send, f"{shop.origin}/", f"{shop.origin}/thanks")
    assert landed == f"{shop.origin}/thanks"
    assert not honeypot_shown  # hidden from people, so only a robot fills it in
    await settle(running)
    [ticket] = (await cli("tickets", "list", "--json")).json
    shown = (await cli("tickets", "show", str(ticket["number"]), "--json")).json
    assert (shown["channel"], shown["subject"], shown["contact_address"]) == (
        "web", "Kettle leaks after a week", "paivi@customer.test")
    [message] = [m for m in shown["messages"] if m["direction"] == "in"]
    assert message["from"]["name"] == "Päivi Customer"
    assert "leaks from the bottom" in message["reply_text"] and "+358 50 765 4321" in message["reply_text"]
    ack = await wait_mail(sink, "paivi@customer.test", "Kettle leaks after a week")
    assert f"[#{ticket['number']}]" in ack.header("Subject")
