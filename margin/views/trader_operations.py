"""The trader's writes: deposit, withdraw, market orders, leverage, isolated margin and the
cross/isolated switch. Each is one `Operation` served by one view that renders its form, previews
it (the service's dry run: the engine's figures before and after, or its refusal) and books it
through its service.

The view never half-writes: each service is one transaction, and a refusal (`ApplicationError`)
comes back as inline errors on the form, in a 200 fragment for htmx (htmx swaps no 4xx), a 422
otherwise.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_UP, Decimal, DecimalException
from functools import cached_property

from django.http import Http404
from django.shortcuts import redirect
from django.utils.crypto import constant_time_compare, salted_hmac

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
from margin.models import MarginAccount, MarginMode
from margin.selectors.accounts import AccountState, PositionState, account_state_load
from margin.services.collateral import (
    collateral_deposit,
    collateral_deposit_preview,
    collateral_max_withdrawal,
    collateral_withdraw,
    collateral_withdraw_preview,
)
from margin.services.margin_mode import (
    isolated_margin_add,
    isolated_margin_add_preview,
    isolated_margin_remove,
    isolated_margin_remove_preview,
    position_leverage_set,
    position_leverage_set_preview,
    position_margin_mode_switch,
    position_margin_mode_switch_preview,
)
from margin.services.positions import position_market_fill, position_market_fill_preview
from margin.templatetags.numbers import money, price, quantity, signed_money
from margin.views.rendering import render_partial, wants_fragment
from margin.views.trader_common import DASHBOARD, with_account

ACCOUNT_CHANGED = "account-changed"
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Operation:
    """One write as the pages offer it: its form, its fragment in the dashboard template, and
    `arguments(form, symbol)` turning a valid form into the keyword arguments its service and
    the service's preview take (`preview` and `submit` may pick the service by them).
    `initial(subject, query)` is what its blank form starts with, `form_options(subject)` the
    form's own keyword arguments, and `hints(account, form)` what its fragment adds to the form
    (the most that can be withdrawn)."""

    name: str
    title: str
    form_class: type[IdempotentForm]
    partial: str
    arguments: Callable[[IdempotentForm, str | None], dict]
    preview: Callable[..., object]
    submit: Callable[..., object]
    on_position: bool = False
    # Booked only with the fingerprint of a preview of exactly these arguments (a market order:
    # a trader never fills an order whose effect they have not been shown).
    needs_preview: bool = False
    initial: Callable[["Subject", Mapping], dict] = lambda _subject, _query: {}
    form_options: Callable[["Subject"], dict] = lambda _subject: {}
    hints: Callable[[MarginAccount, IdempotentForm], dict] = lambda _account, _form: {}


def _collateral_arguments(form, _symbol) -> dict:
    return {"asset": form.cleaned_data["asset"].symbol, "amount": form.cleaned_data["amount"]}


def _trade_arguments(form, _symbol) -> dict:
    return {
        "instrument": form.cleaned_data["instrument"].symbol,
        "side": form.cleaned_data["side"],
        "quantity": form.cleaned_data["quantity"],
    }


def _leverage_arguments(form, symbol) -> dict:
    return {"instrument": symbol, "leverage": form.cleaned_data["leverage"]}


def _isolated_arguments(form, symbol) -> dict:
    return {
        "instrument": symbol,
        "amount": form.cleaned_data["amount"],
        "add": form.cleaned_data["direction"] == IsolatedMarginForm.ADD,
    }


def _isolated_preview(*, add: bool, **arguments):
    return (isolated_margin_add_preview if add else isolated_margin_remove_preview)(**arguments)


def _isolated_submit(*, add: bool, **arguments):
    return (isolated_margin_add if add else isolated_margin_remove)(**arguments)


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


# The cross → isolated suggestion leaves room for the mark to move this much against the
# position between opening the drawer and confirming: the least the service accepts (initial
# margin plus unrealized loss) is re-checked at the mark of the confirmation.
SWITCH_MARK_ROOM = Decimal("0.01")


def least_isolated_margin(row: PositionQuote) -> Decimal:
    """What the service accepts at least now: the initial margin plus the unrealized loss."""
    return row.initial_margin - min(Decimal(0), row.unrealized_pnl)


def suggested_isolated_margin(row: PositionQuote) -> Decimal:
    """The least now, plus what an adverse move of `SWITCH_MARK_ROOM` adds to it: the loss
    grows by notional × move and the initial margin (notional ÷ leverage) by at most
    notional × move × IM/notional; rounded up to the cent."""
    move = row.notional * SWITCH_MARK_ROOM
    room = move + (move * row.initial_margin / row.notional if row.notional else 0)
    return (least_isolated_margin(row) + room).quantize(CENT, ROUND_UP)


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
            arguments=_collateral_arguments,
            preview=collateral_deposit_preview,
            submit=collateral_deposit,
        ),
        Operation(
            name="withdraw",
            title="Withdraw",
            form_class=CollateralForm,
            partial="withdraw-form",
            arguments=_collateral_arguments,
            preview=collateral_withdraw_preview,
            submit=collateral_withdraw,
            hints=_withdraw_hints,
        ),
        Operation(
            name="trade",
            title="Market order",
            form_class=TradeForm,
            partial="trade-form",
            arguments=_trade_arguments,
            preview=position_market_fill_preview,
            submit=position_market_fill,
            needs_preview=True,
            initial=_trade_initial,
        ),
        Operation(
            name="leverage",
            title="Leverage",
            form_class=LeverageForm,
            partial="leverage-panel",
            arguments=_leverage_arguments,
            preview=position_leverage_set_preview,
            submit=position_leverage_set,
            on_position=True,
            initial=_leverage_initial,
            form_options=_leverage_options,
        ),
        Operation(
            name="isolated-margin",
            title="Isolated margin",
            form_class=IsolatedMarginForm,
            partial="isolated-panel",
            arguments=_isolated_arguments,
            preview=_isolated_preview,
            submit=_isolated_submit,
            on_position=True,
        ),
        Operation(
            name="margin-mode",
            title="Margin mode",
            form_class=MarginModeForm,
            partial="mode-panel",
            arguments=_mode_arguments,
            preview=position_margin_mode_switch_preview,
            submit=position_margin_mode_switch,
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
        preview = operation.preview(account=account, **arguments)
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


def _book(request, account, operation, form, subject: Subject, arguments: dict):
    if not _previewed(request, account, operation, arguments):
        # Submitted before the preview of these values appeared: show it, book nothing.
        context = _preview_context(account, operation, form, subject, arguments)
        context["preview_first"] = True
        status = 200 if wants_fragment(request) else 422
        return render_partial(request, DASHBOARD, operation.partial, context, status=status)
    try:
        receipt = operation.submit(
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
        return _book(request, account, operation, form, subject, arguments)
    except DecimalException:
        # Amounts beyond what the engine's Decimal context computes (a notional past 10^10
        # with 18 places): refused as the API refuses them, before anything is booked.
        form.add_error(None, NUMBER_OUT_OF_RANGE)
        partial = "preview" if is_preview else operation.partial
        return _with_errors(request, account, operation, form, subject, partial)
