"""nbclient with its shell-channel sends made safe while a cell's reply is awaited.

    import nbclient_wake; nbclient_wake.install()   # before any nbclient.NotebookClient starts a kernel

A cell that draws into an ipywidgets Output widget (every explorer's first figure) makes nbclient's
Output-widget mimic (``nbclient.output_widget``) send the widget's new state back to the kernel on
the shell channel, from the task that reads IOPub, while another task awaits the cell's
``execute_reply`` with ``await shell_socket.poll(timeout)``. jupyter_client's ``Session.send`` (7.4
and later, 8.x included) writes to that ``zmq.asyncio`` socket through a synchronous shadow socket;
the send processes the socket's pending commands, which clears its edge-triggered ``ZMQ_FD``. If the
reply has just arrived, the event loop is never told: the poll returns only when the cell's timeout
fires, finds the reply waiting, and the run goes on without an error, minutes later
(jupyter/nbclient#312, jupyter/jupyter_client#1059). Reading ``zmq.EVENTS`` through the asyncio
socket after each send makes pyzmq hand a waiting message to the pending poll.

nbval uses a blocking client and never sends during a cell, so ``make test``'s notebook run is not
exposed; the runners that use nbclient are (tests/course/test_wheel.py, test_reliability.py, the
benchmarks, tools/notebook_outputs.py, and the site build through MyST-NB and jupyter-cache).
"""

from __future__ import annotations

import zmq
from nbclient import NotebookClient

__all__ = ["install", "wake_after_sends"]


def wake_after_sends(channel):
    """Wrap ``channel.send`` so that each send is followed by a read of the socket's
    ``zmq.EVENTS``, which schedules any poll or recv already waiting on it; returns ``channel``."""
    send = channel.send

    def send_then_wake(message):
        send(message)
        channel.socket.get(zmq.EVENTS)

    channel.send = send_then_wake
    return channel


def install():
    """Make every ``nbclient.NotebookClient`` wrap its kernel client's shell channel with
    :func:`wake_after_sends`; calling it again changes nothing."""
    start = NotebookClient.async_start_new_kernel_client
    if getattr(start, "wakes_after_sends", False):
        return

    async def start_then_wrap(self):
        client = await start(self)
        wake_after_sends(client.shell_channel)
        return client

    start_then_wrap.wakes_after_sends = True
    NotebookClient.async_start_new_kernel_client = start_then_wrap
