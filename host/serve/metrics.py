"""Prometheus metrics of `dfx serve` (prometheus_client, a registry of its own per server).

    dfx_requests_total{status}                  completion requests by HTTP status; 499: the client left
    dfx_queue_depth, dfx_requests_running       requests waiting for the appliance, and on it (0 or 1)
    dfx_time_to_first_token_seconds             from the request's arrival (queueing included)
    dfx_time_per_output_token_seconds           between two tokens of one request
    dfx_queue_wait_seconds                      from arrival to the appliance
    dfx_prompt_tokens_total, dfx_generation_tokens_total
    dfx_device_errors_total                     requests failed by the appliance (500)
    dfx_device_<counter>_total{phase}           the devices' own counters, summed over the cards, only
                                                for the counters the backend measures: cycles (rtl and
                                                the cards' status record), HBM bytes read and written,
                                                MACs and ring bytes (the simulator). A counter a backend
                                                does not measure is absent, never a zero.
    dfx_appliance_info{bundle, model, target, fpgas, backend, mode}   1
    dfx_appliance_ready                         1 when the appliance takes requests
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST  # noqa: F401  (re-exported for the app)

# Runtime PhaseStats counters -> (metric name, help), for the keys a device's counters() reports.
DEVICE_COUNTERS = {
    "device_cycles": ("dfx_device_cycles", "Kernel cycles of the appliance's calls (the slowest card per call)"),
    "hbm_read_bytes": ("dfx_device_hbm_read_bytes", "Bytes the cards read from HBM"),
    "hbm_write_bytes": ("dfx_device_hbm_write_bytes", "Bytes the cards wrote to HBM"),
    "macs": ("dfx_device_macs", "Multiply-accumulates the cards' matrix units did"),
    "ring_bytes_sent": ("dfx_device_ring_bytes_sent", "Bytes the cards sent on the ring"),
}
TTFT_BUCKETS = (.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120)
TPOT_BUCKETS = (.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10)


class Metrics:
    def __init__(self):
        r = self.registry = CollectorRegistry()
        self.requests = Counter("dfx_requests", "Completion requests by HTTP status (499: the client left)",
                                ["status"], registry=r)
        self.queue_depth = Gauge("dfx_queue_depth", "Requests waiting for the appliance", registry=r)
        self.running = Gauge("dfx_requests_running", "Requests on the appliance (one at a time)", registry=r)
        self.ready = Gauge("dfx_appliance_ready", "1 when the appliance takes requests", registry=r)
        self.ttft = Histogram("dfx_time_to_first_token_seconds", "From a request's arrival to its first token",
                              buckets=TTFT_BUCKETS, registry=r)
        self.tpot = Histogram("dfx_time_per_output_token_seconds", "Time between two tokens of a request",
                              buckets=TPOT_BUCKETS, registry=r)
        self.queue_wait = Histogram("dfx_queue_wait_seconds", "From a request's arrival to the appliance",
                                    buckets=TTFT_BUCKETS, registry=r)
        self.prompt_tokens = Counter("dfx_prompt_tokens", "Prompt tokens run on the appliance", registry=r)
        self.generated = Counter("dfx_generation_tokens", "Tokens generated", registry=r)
        self.device_errors = Counter("dfx_device_errors", "Requests the appliance failed (500)", registry=r)
        self.info = Gauge("dfx_appliance_info", "The served bundle (value 1)",
                          ["bundle", "model", "target", "fpgas", "backend", "mode"], registry=r)
        self._device: dict[str, Counter] = {}

    def bind(self, engine) -> None:
        self.queue_depth.set_function(lambda: engine.waiting)
        self.running.set_function(lambda: engine.running)
        self.ready.set_function(lambda: int(engine.ready))
        i = engine.info
        if i:
            self.info.labels(i.get("id", ""), i.get("model", ""), i.get("target", ""), str(i.get("fpgas", "")),
                             i.get("backend", ""), i.get("mode", "")).set(1)

    def request_done(self, status: str) -> None:
        self.requests.labels(status).inc()

    def device_counters(self, stats: dict, session) -> None:
        """Add a request's PhaseStats counters for the keys the session's devices report."""
        if session is None or not stats:
            return
        measured = set()
        for d in session.devices:
            try:
                measured |= set(d.counters())
            except Exception:  # a closed or faulty device: count nothing rather than guess
                return
        for key, (name, doc) in DEVICE_COUNTERS.items():
            if key not in measured:
                continue
            c = self._device.get(key)
            if c is None:
                c = self._device[key] = Counter(name, doc, ["phase"], registry=self.registry)
            for phase, st in stats.items():
                v = st.counters.get(key)
                if v:
                    c.labels(phase).inc(v)

    def render(self) -> bytes:
        return generate_latest(self.registry)
