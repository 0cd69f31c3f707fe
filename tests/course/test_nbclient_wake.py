"""tools/nbclient_wake.py: a send on the shell channel no longer hides a reply that has arrived.

The race in miniature, without a kernel: a coroutine awaits the reply with ``await socket.poll``
(as nbclient does), the reply arrives, and before the event loop runs again the client sends on the
same socket through jupyter_client's ``Session.send`` (as nbclient's Output-widget mimic does).
With the channel wrapped by ``wake_after_sends`` the poll returns at once, not at its timeout.
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import nbclient
import zmq
import zmq.asyncio
from jupyter_client.session import Session

from helpers import load_script

nbclient_wake = load_script("tools/nbclient_wake.py")

TIMEOUT_MS = 5000


async def _reply_wait_after_a_send():
    """Seconds the client's poll takes when the client sends just after the reply arrived."""
    context = zmq.asyncio.Context()
    router, dealer = context.socket(zmq.ROUTER), context.socket(zmq.DEALER)
    try:
        dealer.connect(f"tcp://127.0.0.1:{router.bind_to_random_port('tcp://127.0.0.1')}")
        session = Session(key=b"")
        channel = SimpleNamespace(socket=dealer, send=lambda message: session.send(dealer, message))
        nbclient_wake.wake_after_sends(channel)
        session.send(dealer, "execute_request", {})
        identity, *_ = await router.recv_multipart()
        poll = asyncio.ensure_future(dealer.poll(TIMEOUT_MS))
        await asyncio.sleep(0.05)                                   # the poll is registered with the loop
        started = time.monotonic()
        session.send(router, "execute_reply", {}, ident=identity)
        time.sleep(0.05)                                            # the reply reaches the client ...
        channel.send(session.msg("comm_msg", {}))                   # ... which sends without yielding
        ready = await poll
        return time.monotonic() - started, ready
    finally:
        for socket in (router, dealer):
            socket.close(linger=0)
        context.term()


def test_a_send_while_the_reply_is_awaited_does_not_delay_the_reply():
    took, ready = asyncio.run(_reply_wait_after_a_send())
    assert ready == zmq.POLLIN, "the poll must end because the reply is there"
    assert took < 1.0, f"the poll took {took:.2f} s; without the wake it waits for its {TIMEOUT_MS / 1000:g} s timeout"


def test_install_wraps_every_notebook_client_once():
    nbclient_wake.install()
    start = nbclient.NotebookClient.async_start_new_kernel_client
    nbclient_wake.install()
    assert nbclient.NotebookClient.async_start_new_kernel_client is start
    assert getattr(start, "wakes_after_sends", False)
