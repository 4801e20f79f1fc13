from __future__ import annotations

from typing import Any

import pytest

from arbsite.errors import RiskRejected
from tests.risk.conftest import intent
from trading.risk import check_order, record_result


@pytest.mark.django_db
def test_it_passes_and_reserves(books: Any, pair: Any) -> None:
    from trading.risk_models import DailyUsage, RiskPosition

    i = intent(pair_id=pair.id)
    check_order(i)
    assert RiskPosition.objects.get(exchange="binance", asset="BTC").qty == i.qty
    assert DailyUsage.objects.get(scope="global").notional == i.notional
    record_result(i, filled=i.qty / 2, avg_price=i.executable_price, ok=True)
    assert RiskPosition.objects.get(exchange="binance", asset="BTC").qty == i.qty / 2


@pytest.mark.django_db
def test_it_rejects_without_a_book(pair: Any, published: Any) -> None:
    with pytest.raises(RiskRejected, match="no order book"):
        check_order(intent(pair_id=pair.id))
    assert published.alerts()[0]["code"] == "RISK_REJECTED"
