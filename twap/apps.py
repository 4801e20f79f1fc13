from django.apps import AppConfig

from exchanges.symbols import Exchange, Instrument, MarketType


class TwapConfig(AppConfig):
    name = "twap"
    verbose_name = "TWAP"

    def ready(self) -> None:
        # The kill switch pauses every running plan (the risk gate calls this hook).
        from twap.scheduler import install_kill_hook

        install_kill_hook()
        # The market-data process streams both legs of every plan that is (or may soon be) trading.
        from exchanges import market_data

        market_data.register_instrument_source(active_plan_instruments)


def active_plan_instruments() -> list[Instrument]:
    """Legs of draft, running and paused plans (market data sources run off the event loop)."""
    from twap.models import Plan, PlanState

    live_states = [PlanState.DRAFT, PlanState.RUNNING, PlanState.PAUSED]
    out: list[Instrument] = []
    for plan in Plan.objects.filter(state__in=live_states).only(
        "leg1_exchange", "leg1_symbol", "leg1_market_type", "leg2_exchange", "leg2_symbol", "leg2_market_type"
    ):
        for leg in ("leg1_", "leg2_"):
            out.append(
                Instrument(
                    Exchange(getattr(plan, leg + "exchange")),
                    getattr(plan, leg + "symbol"),
                    MarketType(getattr(plan, leg + "market_type")),
                )
            )
    return out
