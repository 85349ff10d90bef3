"""The importers by command-line name (an explicit table, not a lookup by string)."""

from __future__ import annotations

from dipn.data.importers.base import LogFormat
from dipn.data.importers.rees46 import Rees46
from dipn.data.importers.retailrocket import Retailrocket
from dipn.data.importers.taobao import TaobaoUserBehavior
from dipn.data.importers.yoochoose import YooChoose

FORMATS: dict[str, type[LogFormat]] = {
    TaobaoUserBehavior.name: TaobaoUserBehavior,
    Rees46.name: Rees46,
    Retailrocket.name: Retailrocket,
    YooChoose.name: YooChoose,
}
