"""flannel's verbs. The plugin only renders a delegate config from subnet.env and hands
every verb to the delegate (bridge, by default), in-process when the delegate is
podnet's and as a process otherwise.

Where podnet differs from the reference, on purpose:
- DEL without a saved config rebuilds the delegate from subnet.env and still releases
  the address (the reference returns success and the address leaks forever); a saved
  config is only removed once the delegate's DEL succeeded.
- a failed ADD keeps its saved config: the DEL the runtime sends next needs it to undo
  whatever the delegate did.
- CHECK really checks (the reference returns success), STATUS says whether subnet.env is
  there (code 50 otherwise) and asks the delegate, GC forwards to the delegate and removes
  saved configs of containers that no longer exist.
"""

from __future__ import annotations

from podnet import _json as json
from podnet.cni import (
    LEGACY_ATTACHMENTS_KEY,
    VALID_ATTACHMENTS_KEY,
    CNIError,
    PluginNotAvailable,
    Request,
    Result,
    log,
    valid_attachments,
)
from podnet.plugins._delegate import delegate as run_delegate
from podnet.plugins._delegate import delegate_add
from podnet.plugins.meta.flannel._config import (
    FlannelConfig,
    build_delegate,
    go_json,
    load_flannel_config,
)
from podnet.plugins.meta.flannel._scratch import ScratchDir
from podnet.plugins.meta.flannel._subnet_env import load_subnet_env

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from typing import Any

GC_KEYS = (VALID_ATTACHMENTS_KEY, LEGACY_ATTACHMENTS_KEY)


def add(request: Request) -> Result:
    conf = load_flannel_config(request)
    delegate = build_delegate(conf, load_subnet_env(conf.subnet_file))
    data = go_json(delegate)
    log(f"flannel ADD {request.container_id}: delegate config {data.decode()}")
    ScratchDir(conf.data_dir).save(request.container_id, data)
    return delegate_add(delegate["type"], delegate, request)


def delete(request: Request) -> None:
    conf = load_flannel_config(request)
    scratch = ScratchDir(conf.data_dir)
    # an ADD killed while saving its config left a temp file: nothing else removes it
    scratch.remove_debris(request.container_id)
    delegate = scratch.load(request.container_id)
    if delegate is None:
        delegate = _rebuild_for_del(conf, request)
        if delegate is None:
            return
    run_delegate("DEL", delegate["type"], delegate, request)
    scratch.remove(request.container_id)


def _rebuild_for_del(conf: FlannelConfig, request: Request) -> dict[str, Any] | None:
    """The delegate config ADD would have saved, from today's subnet.env; None when it
    cannot be built (then nothing can be released here, and GC will do it later)."""
    try:
        delegate = build_delegate(conf, load_subnet_env(conf.subnet_file))
    except CNIError as exc:
        log(
            f"flannel DEL {request.container_id}: no saved config and none can be built "
            f"({exc}); the address stays reserved until GC"
        )
        return None
    log(f"flannel DEL {request.container_id}: no saved config, rebuilt it from subnet.env")
    return delegate


def check(request: Request) -> None:
    conf = load_flannel_config(request)
    saved = ScratchDir(conf.data_dir).load(request.container_id)
    if saved is None:
        raise CNIError(
            f"flannel: no delegate config saved for container {request.container_id} "
            f"in {conf.data_dir}"
        )
    current = build_delegate(conf, load_subnet_env(conf.subnet_file))
    saved_ranges = (
        saved.get("ipam", {}).get("ranges") if isinstance(saved.get("ipam"), dict) else None
    )
    if saved_ranges != current["ipam"]["ranges"]:
        raise CNIError(
            "flannel: subnet.env has changed since the pod was added",
            f"pod ranges {saved_ranges}, node ranges now {current['ipam']['ranges']}",
        )
    if "prevResult" in request.config:
        saved["prevResult"] = request.config["prevResult"]
    run_delegate("CHECK", saved["type"], saved, request)


def status(request: Request) -> None:
    conf = load_flannel_config(request)
    try:
        env = load_subnet_env(conf.subnet_file)
    except CNIError as exc:
        raise PluginNotAvailable(exc.msg, exc.details) from None
    delegate = build_delegate(conf, env)
    run_delegate("STATUS", delegate["type"], delegate, request)


def gc(request: Request) -> None:
    conf = load_flannel_config(request)
    valid_ids = _valid_container_ids(request.config)
    errors = []
    scratch = ScratchDir(conf.data_dir)
    for container_id in scratch.container_ids():
        if container_id in valid_ids:
            continue
        saved = scratch.load(container_id)
        if saved is not None and saved.get("name") != conf.name:
            continue  # another network's attachment: its own GC decides
        try:
            scratch.remove(container_id)
            log(f"flannel GC {conf.name}: removed the saved config of {container_id}")
        except CNIError as exc:
            errors.append(str(exc))
    # An ADD killed while saving, whose container the runtime then forgot: no DEL comes.
    for container_id, content in sorted(scratch.debris_owners().items()):
        if container_id in valid_ids or _of_another_network(content, conf.name):
            continue
        try:
            scratch.remove_debris(container_id)
            log(f"flannel GC {conf.name}: removed the unfinished save of {container_id}")
        except CNIError as exc:
            errors.append(str(exc))
    try:
        delegate = build_delegate(conf, load_subnet_env(conf.subnet_file))
        for key in GC_KEYS:
            if key in request.config:
                delegate[key] = request.config[key]
        run_delegate("GC", delegate["type"], delegate, request)
    except CNIError as exc:
        errors.append(str(exc))
    if errors:
        raise CNIError("; ".join(errors))


def _of_another_network(content: bytes, name: str) -> bool:
    """A temp file whose content is whole and names another network: its GC decides
    (one that is not whole is nobody's)."""
    try:
        config = json.loads(content)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False
    return isinstance(config, dict) and config.get("name") not in (None, name)


def _valid_container_ids(config: dict[str, Any]) -> set[str]:
    return {container_id for container_id, _ in valid_attachments(config)}
