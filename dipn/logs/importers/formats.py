"""The importers by command-line name (an explicit table, not a lookup by string)."""

from __future__ import annotations

from dipn.logs.importers.base import LogFormat
from dipn.logs.importers.rees46 import Rees46
from dipn.logs.importers.retailrocket import Retailrocket
from dipn.logs.importers.taobao import TaobaoUserBehavior
from dipn.logs.importers.yoochoose import YooChoose

FORMATS: dict[str, type[LogFormat]] = {
    TaobaoUserBehavior.name: TaobaoUserBehavior,
    Rees46.name: Rees46,
    Retailrocket.name: Retailrocket,
    YooChoose.name: YooChoose,
}
