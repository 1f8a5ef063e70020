"""The trader's writes: deposit, withdraw, market orders, leverage, isolated margin and the
cross/isolated switch. Each is one `Operation` served by one view that renders its form, previews
it (the service's dry run: the engine's figures before and after, or its refusal) and books it
through its service.

The view never half-writes: each service is one transaction, and a refusal (`ApplicationError`)
comes back as inline errors on the form, in a 200 fragment for htmx (htmx swaps no 4xx), a 422
otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, DecimalException
from functools import cached_property
from typing import TYPE_CHECKING

from django.http import Http404
from django.shortcuts import redirect
from django.utils.crypto import constant_time_compare, salted_hmac

from margin.engine.fills import SWITCH_MARK_ROOM, least_isolated_margin, suggested_isolated_margin
from margin.engine.reference import AccountQuote, PositionQuote
from margin.errors import ApplicationError
from margin.forms.fields import IdempotentForm
from margin.forms.trader import (
    CollateralForm,
    IsolatedMarginForm,
    LeverageForm,
    MarginModeForm,
    TradeForm,
)
from margin.input_limits import NUMBER_OUT_OF_RANGE
from margin.selectors.accounts import AccountState, PositionState, account_state_load
from margin.services.collateral import (
    collateral_deposit,
    collateral_max_withdrawal,
    collateral_withdraw,
)
from margin.services.margin_mode import (
    isolated_margin_add,
    isolated_margin_remove,
    position_leverage_set,
    position_margin_mode_switch,
)
from margin.services.positions import position_market_fill
from margin.services.writes import Write
from margin.templatetags.numbers import money, price, quantity, signed_money
from margin.views.rendering import render_partial, wants_fragment
from margin.views.trader_common import DASHBOARD, with_account
from margin.vocabulary import MarginMode

if TYPE_CHECKING:  # annotations only: views never use a model itself
    from margin.models import MarginAccount

ACCOUNT_CHANGED = "account-changed"


@dataclass(frozen=True)
class Operation:
    """One write as the pages offer it: its form, its fragment in the dashboard template, and the
    service `write` it previews and books (`pick_write(form)` picks one of two instead: isolated
    margin in or out). The write's arguments come from the valid form (`arguments`).
    `initial(subject, query)` is what its blank form starts with, `form_options(subject)` the
    form's own keyword arguments, and `hints(account, form)` what its fragment adds to the form
    (the most that can be withdrawn)."""

    name: str
    title: str
    form_class: type[IdempotentForm]
    partial: str
    write: Write | None = None
    pick_write: Callable[[IdempotentForm], Write] | None = None
    # The write's arguments when the form does not name them as the write does.
    arguments_of: Callable[[IdempotentForm, str | None], dict] | None = None
    on_position: bool = False
    # Booked only with the fingerprint of a preview of exactly these arguments (a market order:
    # a trader never fills an order whose effect they have not been shown).
    needs_preview: bool = False
    initial: Callable[[Subject, Mapping], dict] = lambda _subject, _query: {}
    form_options: Callable[[Subject], dict] = lambda _subject: {}
    hints: Callable[[MarginAccount, IdempotentForm], dict] = lambda _account, _form: {}

    def write_for(self, form: IdempotentForm) -> Write:
        return self.pick_write(form) if self.pick_write is not None else self.write

    def arguments(self, form: IdempotentForm, symbol: str | None) -> dict:
        """The write's arguments from the valid form: each of its parameters from the field of
        that name (a chosen asset or instrument as its symbol); a position's panel takes the
        instrument from its path."""
        if self.arguments_of is not None:
            return self.arguments_of(form, symbol)
        arguments = {}
        for name in self.write_for(form).parameters:
            if name == "instrument" and symbol is not None:
                arguments[name] = symbol
            else:
                value = form.cleaned_data[name]
                arguments[name] = getattr(value, "symbol", value)
        return arguments


def _isolated_write(form: IdempotentForm) -> Write:
    adding = form.cleaned_data["direction"] == IsolatedMarginForm.ADD
    return isolated_margin_add if adding else isolated_margin_remove


def _mode_arguments(form, symbol) -> dict:
    mode = form.cleaned_data["margin_mode"]
    fenced = form.cleaned_data["isolated_margin"] if mode == MarginMode.ISOLATED else None
    return {"instrument": symbol, "mode": mode, "isolated_margin": fenced}


def _trade_initial(_subject, query) -> dict:
    """An order form filled from the query: a row's Close button asks for the opposite side
    and the whole size."""
    return {name: query[name] for name in ("instrument", "side", "quantity") if name in query}


def _leverage_initial(subject, _query) -> dict:
    return {"leverage": subject.position.leverage}


def _leverage_options(subject) -> dict:
    return {"max_leverage": subject.row.max_leverage}


def _mode_initial(subject, _query) -> dict:
    """The other mode; to isolated, the suggested margin (the least now, with room for the
    mark to move before the trader confirms)."""
    if subject.position.is_isolated:
        return {"margin_mode": MarginMode.CROSS}
    return {
        "margin_mode": MarginMode.ISOLATED,
        "isolated_margin": suggested_isolated_margin(subject.row),
    }


def _withdraw_hints(account: MarginAccount, form: IdempotentForm) -> dict:
    """The most of the chosen asset that can leave now (none shown when it cannot be told)."""
    asset = form["asset"].value()
    if not asset:
        return {"max_withdrawal": None}
    try:
        return {"max_withdrawal": collateral_max_withdrawal(account=account, asset=asset)}
    except ApplicationError:
        return {"max_withdrawal": None}


OPERATIONS = {
    op.name: op
    for op in (
        Operation(
            name="deposit",
            title="Deposit",
            form_class=CollateralForm,
            partial="deposit-form",
            write=collateral_deposit,
        ),
        Operation(
            name="withdraw",
            title="Withdraw",
            form_class=CollateralForm,
            partial="withdraw-form",
            write=collateral_withdraw,
            hints=_withdraw_hints,
        ),
        Operation(
            name="trade",
            title="Market order",
            form_class=TradeForm,
            partial="trade-form",
            write=position_market_fill,
            needs_preview=True,
            initial=_trade_initial,
        ),
        Operation(
            name="leverage",
            title="Leverage",
            form_class=LeverageForm,
            partial="leverage-panel",
            write=position_leverage_set,
            on_position=True,
            initial=_leverage_initial,
            form_options=_leverage_options,
        ),
        Operation(
            name="isolated-margin",
            title="Isolated margin",
            form_class=IsolatedMarginForm,
            partial="isolated-panel",
            pick_write=_isolated_write,
            on_position=True,
        ),
        Operation(
            name="margin-mode",
            title="Margin mode",
            form_class=MarginModeForm,
            partial="mode-panel",
            write=position_margin_mode_switch,
            arguments_of=_mode_arguments,
            on_position=True,
            initial=_mode_initial,
        ),
    )
}


def position_quote(quote: AccountQuote | None, position: PositionState | None):
    """The position's row in `quote`: by its primary key, or by its instrument when the quote
    is of a preview in which it is not booked yet (a first fill)."""
    if quote is None or position is None:
        return None
    ids = {position.instrument, str(position.position_id)}
    return next((row for row in quote.positions if row.id in ids), None)


@dataclass(frozen=True)
class Subject:
    """The account as it stands (None for the dashboard's blank forms, which need no figure)
    and the position an operation is about (None for collateral and orders)."""

    state: AccountState | None
    position: PositionState | None

    @cached_property
    def row(self) -> PositionQuote | None:
        return position_quote(self.state.quote(), self.position)


def _subject(account: MarginAccount, symbol: str | None) -> Subject:
    state = account_state_load(account)
    if symbol is None:
        return Subject(state, None)
    position = state.positions.get(symbol)
    if position is None or not position.quantity:
        raise Http404("No such open position")
    return Subject(state, position)


def _form_kwargs(operation: Operation, subject: Subject) -> dict:
    # Element ids per operation: the deposit and withdraw forms share a page and a form class.
    return {"auto_id": f"{operation.name}-%s", **operation.form_options(subject)}


def blank_form(operation: Operation, subject: Subject, query=None) -> IdempotentForm:
    """A form with a fresh idempotency key."""
    return operation.form_class(
        initial=operation.initial(subject, query or {}), **_form_kwargs(operation, subject)
    )


def blank_forms() -> dict:
    """The dashboard's always-open forms (none is about a position)."""
    subject = Subject(state=None, position=None)
    return {
        name + "_form": blank_form(OPERATIONS[name], subject)
        for name in ("trade", "deposit", "withdraw")
    }


def _context(account, operation, form, subject: Subject, **extra) -> dict:
    row = subject.row if subject.position else None
    return {
        "account": account,
        "operation": operation,
        "form": form,
        "symbol": subject.position.instrument if subject.position else None,
        "position_row": row,
        "least_isolated_margin": least_isolated_margin(row) if row else None,
        "switch_mark_room": SWITCH_MARK_ROOM,
        **extra,
        **operation.hints(account, form),
    }


def _apply_refusal(form: IdempotentForm, error: ApplicationError) -> None:
    """The service's message on the form, on the field it names when the form shows that field
    (a refused idempotency key is the form's error, its field being hidden)."""
    fields = [
        name
        for name in error.extra
        if name in form.fields and not form.fields[name].widget.is_hidden
    ]
    form.add_error(fields[0] if fields else None, error.message)


# How a service's details read on a preview or a receipt; the ones not listed (instrument,
# side, asset...) are what the trader just typed in.
DETAIL_LABELS = {
    "fill": ("Effect", str),
    "price": ("Fill price (mark)", price),
    "fee": ("Taker fee, USDT", money),
    "realized_pnl": ("Realized PnL, USDT", signed_money),
    "position_quantity": ("Position after", quantity),
    "entry_price": ("Entry price after", price),
    "amount": ("Amount", quantity),
    "balance": ("Wallet balance after", quantity),
}


@dataclass(frozen=True)
class Detail:
    label: str
    text: str


def shown_details(details: dict[str, str]) -> list[Detail]:
    """The details of a preview or receipt worth reading, labelled and formatted; for a
    cross/isolated switch, the collateral that moves and which way."""
    shown = [
        Detail(label, show(Decimal(details[name]) if show is not str else details[name]))
        for name, (label, show) in DETAIL_LABELS.items()
        if name in details
    ]
    if "mode" in details and "isolated_margin" in details:
        route = (
            f"cross wallet → {details['instrument']} isolated"
            if details["mode"] == MarginMode.ISOLATED
            else f"{details['instrument']} isolated → cross wallet"
        )
        amount = money(Decimal(details["isolated_margin"]))
        shown.append(Detail("Collateral that moves", f"{amount} USDT, {route}"))
    return shown


def _traded_position(subject: Subject, arguments: dict) -> PositionState | None:
    instrument = arguments.get("instrument")
    if subject.position is not None or instrument is None:
        return subject.position
    return subject.state.position(instrument) if instrument in subject.state.underlyings else None


def _with_errors(request, account, operation, form, subject: Subject, partial: str):
    """The form again with its errors: a 200 fragment for htmx (it swaps no 4xx), else a 422."""
    status = 200 if wants_fragment(request) else 422
    context = _context(account, operation, form, subject)
    return render_partial(request, DASHBOARD, partial, context, status=status)


def _preview_context(account, operation, form, subject: Subject, arguments: dict) -> dict:
    """The dry run's figures, or the form with the service's refusal on it."""
    try:
        preview = operation.write_for(form).preview(account=account, **arguments)
    except ApplicationError as error:
        _apply_refusal(form, error)
        return _context(account, operation, form, subject)
    position = _traded_position(subject, arguments)
    return _context(
        account,
        operation,
        form,
        subject,
        preview=preview,
        details=shown_details(preview.details),
        preview_symbol=position.instrument if position else None,
        position_before=position_quote(preview.before, position),
        position_after=position_quote(preview.after, position),
        previewed=(
            preview_fingerprint(account, arguments)
            if operation.needs_preview and not getattr(preview, "refusal", None)
            else None
        ),
    )


def _preview(request, account, operation, form, subject: Subject, arguments: dict):
    context = _preview_context(account, operation, form, subject, arguments)
    return render_partial(request, DASHBOARD, "preview", context)


def preview_fingerprint(account: MarginAccount, arguments: dict) -> str:
    """What a preview of these arguments hands the form, and booking asks back: the same
    order, on the same account, as the trader was shown."""
    shown = "|".join(
        f"{name}={value.normalize() if isinstance(value, Decimal) else value}"
        for name, value in sorted(arguments.items())
    )
    return salted_hmac("order-preview", f"{account.pk}|{shown}").hexdigest()


def _previewed(request, account, operation, arguments: dict) -> bool:
    if not operation.needs_preview:
        return True
    return constant_time_compare(
        request.POST.get("previewed", ""), preview_fingerprint(account, arguments)
    )


def _submit(request, account, operation, form, subject: Subject, arguments: dict):
    if not _previewed(request, account, operation, arguments):
        # Submitted before the preview of these values appeared: show it, book nothing.
        context = _preview_context(account, operation, form, subject, arguments)
        context["preview_first"] = True
        status = 200 if wants_fragment(request) else 422
        return render_partial(request, DASHBOARD, operation.partial, context, status=status)
    try:
        receipt = operation.write_for(form).submit(
            account=account,
            idempotency_key=str(form.cleaned_data["idempotency_key"]),
            actor=request.user,
            **arguments,
        )
    except ApplicationError as error:
        _apply_refusal(form, error)
        return _with_errors(request, account, operation, form, subject, operation.partial)
    if not wants_fragment(request):
        return redirect("trader:account", pk=account.pk)
    if operation.on_position:
        # The position's panel shows the receipt; its row refreshes on the event.
        context = {
            "account": account,
            "operation": operation,
            "receipt": receipt,
            "details": shown_details(receipt.details),
        }
        response = render_partial(request, DASHBOARD, "done-panel", context)
    else:
        fresh = blank_form(operation, subject)
        context = _context(
            account,
            operation,
            fresh,
            subject,
            receipt=receipt,
            details=shown_details(receipt.details),
        )
        response = render_partial(request, DASHBOARD, operation.partial, context)
    response["HX-Trigger"] = ACCOUNT_CHANGED
    return response


@with_account
def operation_view(request, account, name: str, symbol: str | None = None):
    """GET: the operation's form (a panel for a position's operations). POST with `preview`:
    the dry run. POST: book it, then a fresh form and an `account-changed` event for the live
    fragments."""
    operation = OPERATIONS.get(name)
    if operation is None or operation.on_position != (symbol is not None):
        raise Http404("No such operation")
    subject = _subject(account, symbol)
    if request.method == "GET":
        form = blank_form(operation, subject, request.GET)
        return render_partial(
            request, DASHBOARD, operation.partial, _context(account, operation, form, subject)
        )
    form = operation.form_class(request.POST, **_form_kwargs(operation, subject))
    is_preview = "preview" in request.POST
    if not form.is_valid():
        partial = "preview" if is_preview else operation.partial
        return _with_errors(request, account, operation, form, subject, partial)
    arguments = operation.arguments(form, subject.position and subject.position.instrument)
    try:
        if is_preview:
            return _preview(request, account, operation, form, subject, arguments)
        return _submit(request, account, operation, form, subject, arguments)
    except DecimalException:
        # Amounts beyond what the engine's Decimal context computes (a notional past 10^10
        # with 18 places): refused as the API refuses them, before anything is booked.
        form.add_error(None, NUMBER_OUT_OF_RANGE)
        partial = "preview" if is_preview else operation.partial
        return _with_errors(request, account, operation, form, subject, partial)
