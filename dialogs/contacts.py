"""Manage alert contacts: the five operations of the utility's page, each read back and confirmed.

1. add a new contact to one or more service accounts (entered once);
2. add an existing contact to other service accounts;
3. edit a contact;
4. remove a contact from one or more service accounts;
5. add or remove contacts on ALL service accounts at once.

Lists shown to the customer are numbered when prompted and the numbering is kept in the session, so
"1,3" means what the customer saw. Every write goes through the port, scoped to the verified customer.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from dialogs.engine import Choice, Invalid, State, Turn
from dialogs.fields import (
    LANGUAGE_CHOICES,
    account_choices,
    accounts_brief,
    accounts_named,
    contact_choices,
    find_contact,
    language_label,
    parse_email,
    parse_name,
    parse_name_and_phone,
    parse_new_email,
    parse_phone,
    parse_yes_no,
    show_email,
    show_language,
    show_phone,
)
from dialogs.ports import ChangeResult, ContactView, NewContact, Outcome
from dialogs.text import N_, NP_, Listed, Literal, Msg

MENU = "contacts.menu"
_CONFIRM_HINT = N_("Please answer Y (yes) or N (no).")
_NEXT = N_("More changes: type a number of the contacts menu (? shows it). MENU: main menu.")
_NEXT_SHORT = N_("? shows the contacts menu. MENU: main menu.")  # beside a long name
_TAKEN_NEXT = N_("Please type another number, or X to leave it.")
_SAME = N_("That is already the {field} of {name}. Nothing to change.")
_NO_EMAIL = N_("{name} has no email. Nothing to change.")  # K typed to delete an email never given

_OPERATIONS = (
    Choice("add", Msg.of(N_("Add new contact"))),
    Choice("link", Msg.of(N_("Add contact to accounts"))),
    Choice("edit", Msg.of(N_("Edit contact"))),
    Choice("unlink", Msg.of(N_("Remove from accounts"))),
    Choice("all", Msg.of(N_("ALL accounts"))),
    Choice("list", Msg.of(N_("See contacts"))),
)


# -- helpers -------------------------------------------------------------------------------------


def _contact(turn: Turn) -> ContactView | None:
    return find_contact(turn, turn.slots.get("contact", 0))


def _name(turn: Turn) -> dict[str, Any]:
    return {"name": Literal(str(turn.slots.get("name", "")))}


def _gone(turn: Turn) -> str:
    turn.slots.clear()
    turn.say(Msg.of(N_("That contact is no longer on file. Nothing was changed.")))
    return MENU


def _not_saved(turn: Turn) -> str:
    turn.slots.clear()
    turn.say(Msg.of(N_("OK, nothing was changed.")))
    return MENU


def _say_taken(turn: Turn, phone: str, name: str) -> None:
    turn.say(Msg.of(N_("{phone} is already the number of {name}."), phone=show_phone(phone), name=Literal(name)))


def _phone_taken(turn: Turn, phone: str, except_id: int | None = None) -> bool:
    for contact in turn.ports.contacts(turn.customer_id):
        if contact.phone == phone and contact.id != except_id:
            _say_taken(turn, phone, contact.name)
            return True
    return False


def _refused(turn: Turn, result: ChangeResult) -> bool:
    """Say why a change was refused for a limit; returns whether it was."""
    support = turn.settings.support_phone
    if result.outcome is Outcome.TOO_MANY_CONTACTS:
        turn.say(
            Msg.count(
                NP_(
                    "There is already {n} contact, the most allowed. Edit a contact instead, or call {support}.",
                    "There are already {n} contacts, the most allowed. Edit a contact instead, or call {support}.",
                ),
                result.limit,
                support=support,
            )
        )
        return True
    if result.outcome is Outcome.TOO_MANY_NOTICES:
        turn.say(
            Msg.of(
                N_(
                    "Too many new numbers in the last hour. Nothing was saved. Please try again "
                    "later, or call {support}."
                ),
                support=support,
            )
        )
        return True
    return False


# -- the operations menu ---------------------------------------------------------------------------


def _operations(turn: Turn, key: str) -> str:
    turn.slots.clear()
    contacts = turn.ports.contacts(turn.customer_id)
    if key == "add":
        limit = turn.settings.max_contacts
        if len(contacts) >= limit:
            _refused(turn, ChangeResult(Outcome.TOO_MANY_CONTACTS, limit=limit))
            return MENU
        return "add.name"
    if not contacts:
        turn.say(Msg.of(N_("There are no contacts yet. Choose 1 to add one.")))
        return MENU
    if key == "list":
        return "list.contacts"
    if key == "unlink" and not any(c.service_account_ids for c in contacts):
        turn.say(Msg.of(N_("No contact is on a service account yet.")))
        return MENU
    return {"link": "link.contact", "edit": "edit.contact", "unlink": "unlink.contact", "all": "all.action"}[key]


def _listed_contacts(turn: Turn) -> list[Choice]:
    """Every contact with its service accounts, one row each; picking one edits it."""
    contacts = turn.ports.contacts(turn.customer_id)
    accounts = turn.ports.service_accounts(turn.customer_id)
    rows = []
    for number, (choice, contact) in enumerate(zip(contact_choices(contacts), contacts, strict=True), 1):
        held = [a for a in accounts if a.id in contact.service_account_ids]
        label = Msg.of(
            N_("{contact}: {accounts}"),
            contact=choice.label,
            accounts=accounts_brief(held, len(accounts), most=2, counted=True)
            if held
            else Msg.of(N_("no service account")),
        )
        rows.append(Choice(choice.key, label, number=number, digits=choice.digits))
    return rows


# -- 1. add a new contact --------------------------------------------------------------------------


def _add_name(turn: Turn, value: tuple[str, str | Invalid | None]) -> str:
    """The name, and the number when it was typed with it (one SMS instead of two)."""
    name, phone = value
    turn.slots["name"] = name
    if phone is None:
        return "add.phone"
    if isinstance(phone, Invalid):
        turn.say(phone.hint)
        return "add.phone"
    return _add_phone(turn, phone)


def _add_phone(turn: Turn, phone: str) -> str:
    if _phone_taken(turn, phone):  # the name stays: another number, or the way to that contact
        turn.say(Msg.of(_TAKEN_NEXT))
        return "add.phone"
    turn.slots["phone"] = phone
    return "add.email"


def _add_email(turn: Turn, email: str) -> str:
    turn.slots["email"] = email
    return "add.language"


def _add_language(turn: Turn, language: str) -> str:
    turn.slots["language"] = language
    return "add.accounts"


def _add_confirm_params(turn: Turn) -> dict[str, Any]:
    s = turn.slots
    shown = {
        "name": Literal(s["name"]),
        "phone": show_phone(s["phone"]),
        "language": language_label(s["language"]),
        "accounts": accounts_named(turn, s["accounts"]),
    }
    if s["email"]:
        what = N_("Add {name}?\n{phone}\n{email}\n{language}\n{accounts}")
        shown["email"] = show_email(s["email"])
    else:
        what = N_("Add {name}?\n{phone}\n{language}\n{accounts}")
    return {"what": Msg.of(what, **shown)}


def _add_confirm(turn: Turn, yes: bool) -> str:
    if not yes:
        return _not_saved(turn)
    s = turn.slots
    contact = NewContact(s["name"], s["phone"], s["email"] or None, s["language"])
    if _phone_taken(turn, contact.phone):  # taken meanwhile: everything else typed stays
        turn.say(Msg.of(_TAKEN_NEXT))
        return "add.phone"
    # only what the read-back named: a service account moved to another customer meanwhile (a
    # re-import) is neither saved nor counted
    own = {a.id for a in turn.ports.service_accounts(turn.customer_id)}
    ids = [int(i) for i in s["accounts"] if int(i) in own]
    if not ids:
        return "add.accounts"
    result = turn.ports.add_contact(turn.customer_id, contact, ids)
    if result.outcome is Outcome.DUPLICATE:
        _say_taken(turn, contact.phone, result.other_name or "")
        turn.say(Msg.of(_TAKEN_NEXT))
        return "add.phone"
    if _refused(turn, result):
        turn.slots.clear()
        return MENU
    return _saved(
        turn,
        NP_(
            "Saved. {name} will get alerts for {n} service account.",
            "Saved. {name} will get alerts for {n} service accounts.",
        ),
        len(ids),
        name=Literal(contact.name),
    )


# -- 2. add an existing contact to other service accounts ------------------------------------------


def _pick_contact(turn: Turn, contact_id: str) -> ContactView | None:
    contact = find_contact(turn, contact_id)
    if contact is not None:
        turn.slots["contact"] = contact.id
        turn.slots["name"] = contact.name
    return contact


def _link_contact(turn: Turn, contact_id: str) -> str:
    contact = _pick_contact(turn, contact_id)
    if contact is None:
        return _gone(turn)
    accounts = turn.ports.service_accounts(turn.customer_id)
    if all(a.id in contact.service_account_ids for a in accounts):
        turn.say(Msg.of(N_("{name} is already on every service account."), name=Literal(contact.name)))
        turn.slots.clear()
        return MENU
    return "link.accounts"


def _accounts_of_contact(on: bool) -> Any:
    """Options: the service accounts the chosen contact is on (``on``), or is not on."""

    def options(turn: Turn) -> list[Choice]:
        contact = _contact(turn)
        held = contact.service_account_ids if contact else frozenset()
        accounts = turn.ports.service_accounts(turn.customer_id)
        return account_choices(accounts, [a.id for a in accounts if (a.id in held) == on])

    return options


def _accounts_params(turn: Turn) -> dict[str, Any]:
    n = len(turn.slots["accounts"])
    notice = Msg.count(
        NP_("{name} will get no more alerts for it.", "{name} will get no more alerts for them."), n, **_name(turn)
    )
    left = _left_without_contacts(turn, {int(turn.slots.get("contact", 0))}, {int(i) for i in turn.slots["accounts"]})
    if left:  # the read-back says what matters more: nobody at all will be told of an outage there
        notice = _nobody_left(turn, left)
    return {**_name(turn), "accounts": accounts_named(turn, turn.slots["accounts"]), "notice": notice}


def _nobody_left(turn: Turn, left: list[int]) -> Msg:
    """The warning that the ``left`` accounts will have no alert contact after a removal: named, or
    all of them ("them" or "the chosen accounts" would read as the people being removed)."""
    if len(left) == len(turn.ports.service_accounts(turn.customer_id)):
        return Msg.of(N_("After this, no one will get alerts for any of your service accounts."))
    return Msg.of(N_("After this, no one will get alerts for {accounts}."), accounts=accounts_named(turn, left))


def _left_without_contacts(turn: Turn, removed: set[int], account_ids: set[int]) -> list[int]:
    """Which of ``account_ids`` the ``removed`` contacts are on and no other contact an alert reaches is.

    An account none of the ``removed`` is on is not counted: the change does not touch it. A contact
    an alert would not reach (opted out, no mobile number) covers nothing.
    """
    covered_by_removed: set[int] = set()
    covered_by_others: set[int] = set()
    reachable = turn.ports.reachable_contacts(turn.customer_id)
    for contact in turn.ports.contacts(turn.customer_id):
        if contact.id in removed:
            covered_by_removed.update(contact.service_account_ids)
        elif contact.id in reachable:
            covered_by_others.update(contact.service_account_ids)
    return sorted((account_ids & covered_by_removed) - covered_by_others)


def _pick_accounts(confirm_state: str) -> Any:
    """The act of a state where service accounts are picked for the chosen contact."""

    def act(turn: Turn, ids: list[str]) -> str:
        turn.slots["accounts"] = ids
        return confirm_state

    return act


def _saved(turn: Turn, forms: tuple[str, str], n: int, **params: Any) -> str:
    """Say what was saved and how to go on, in one line instead of the whole menu again."""
    turn.say(Msg.count(forms, n, **params))
    turn.slots.clear()
    turn.settle(Msg.of(_NEXT), short=Msg.of(_NEXT_SHORT))
    return MENU


def _change_accounts(turn: Turn, yes: bool, change: Any, forms: tuple[str, str]) -> str:
    """Confirm step shared by 'add to more accounts' and 'remove from accounts'."""
    if not yes:
        return _not_saved(turn)
    contact = _contact(turn)
    if contact is None:
        return _gone(turn)
    count = change(turn.customer_id, [contact.id], [int(i) for i in turn.slots["accounts"]])
    return _saved(turn, forms, count, name=Literal(contact.name))


def _link_confirm(turn: Turn, yes: bool) -> str:
    return _change_accounts(
        turn,
        yes,
        turn.ports.assign,
        NP_("Saved. {name} was added to {n} service account.", "Saved. {name} was added to {n} service accounts."),
    )


# -- 3. edit a contact -----------------------------------------------------------------------------

_FIELDS = (
    Choice("name", Msg.of(N_("Name"))),
    Choice("phone", Msg.of(N_("Mobile number"))),
    Choice("email", Msg.of(N_("Email"))),
    Choice("language", Msg.of(N_("Language"))),
)
# the same fields in a sentence ("the mobile number of An")
_FIELD_WORDS = {
    "name": N_("name"),
    "phone": N_("mobile number"),
    "email": N_("email"),
    "language": N_("language"),
}


def _edit_contact(turn: Turn, contact_id: str) -> str:
    return "edit.field" if _pick_contact(turn, contact_id) else _gone(turn)


def _edit_field(turn: Turn, key: str) -> str:
    turn.slots["field"] = key
    return f"edit.{key}"


def _edit_value(turn: Turn, value: str) -> str:
    contact = _contact(turn)
    if contact is None:
        return _gone(turn)
    field = str(turn.slots["field"])
    if (getattr(contact, field) or "") == (value or ""):  # no change: no read-back, no notice, no audit
        same = _NO_EMAIL if field == "email" and not value else _SAME
        turn.say(Msg.of(same, field=Msg.of(_FIELD_WORDS[field]), name=Literal(contact.name)))
        return "edit.field"
    if turn.slots["field"] == "phone" and _phone_taken(turn, value, except_id=contact.id):
        return "edit.phone"
    turn.slots["value"] = value
    return "edit.confirm"


def _show(field: str, value: str | None) -> Msg | Literal:
    if field == "phone":
        return show_phone(value)
    if field == "email":
        return show_email(value)
    if field == "language":
        return language_label(value or "en")
    return Literal(value or "")


def _edit_confirm_params(turn: Turn) -> dict[str, Any]:
    """The read-back; what it shows as the old value is what the save will require to be still stored."""
    field = str(turn.slots["field"])
    contact = _contact(turn)
    old = getattr(contact, field) if contact else None
    turn.slots["old"] = old
    if contact is not None:  # named as it is called now (another phone may have renamed it)
        turn.slots["name"] = contact.name
    new = turn.slots["value"]
    if field == "language":
        what = Msg.of(
            N_("{name} will get alerts {new}, no longer {old}. Save?"),
            name=Literal(str(turn.slots["name"])),
            new=show_language(new or "en"),
            old=show_language(old or "en"),
        )
    elif field == "email" and not new:
        what = Msg.of(
            N_("Remove the email {old} of {name}?"), name=Literal(str(turn.slots["name"])), old=_show(field, old)
        )
    else:
        what = Msg.of(
            N_("Change the {field} of {name} from {old} to {new}?"),
            name=Literal(str(turn.slots["name"])),
            field=Msg.of(_FIELD_WORDS[field]),
            old=_show(field, old),
            new=_show(field, new),
        )
    return {"what": what}


def _edit_confirm(turn: Turn, yes: bool) -> str:
    if not yes:
        return _not_saved(turn)
    field, value = str(turn.slots["field"]), turn.slots["value"] or None
    result = turn.ports.update_contact(
        turn.customer_id, int(turn.slots["contact"]), field, turn.slots.get("old"), value
    )
    if result.outcome is Outcome.GONE:
        return _gone(turn)
    if result.outcome is Outcome.CHANGED and (result.current or "") == (value or ""):
        turn.say(Msg.of(_SAME, field=Msg.of(_FIELD_WORDS[field]), name=Literal(str(turn.slots.get("name", "")))))
        turn.slots.clear()
        turn.settle(Msg.of(_NEXT), short=Msg.of(_NEXT_SHORT))
        return MENU  # another phone saved just this meanwhile: nothing left to do
    if result.outcome is Outcome.CHANGED:  # someone saved another value since the read-back
        turn.say(
            Msg.of(
                N_("That was changed meanwhile. Now: {current}. Nothing was saved."),
                current=_show(field, result.current),
            )
        )
        return "edit.confirm"
    if result.outcome is Outcome.DUPLICATE and value is not None:
        _say_taken(turn, value, result.other_name or "")
        return "edit.phone"
    if _refused(turn, result):
        turn.slots.clear()
        return MENU
    name = value if field == "name" and value else str(turn.slots.get("name", ""))
    turn.say(Msg.of(N_("Saved. {name} was updated."), name=Literal(name)))
    turn.slots.clear()
    turn.settle(Msg.of(_NEXT), short=Msg.of(_NEXT_SHORT))
    return MENU


# -- 4. remove a contact from service accounts -----------------------------------------------------


def _unlink_contact_options(turn: Turn) -> list[Choice]:
    contacts = turn.ports.contacts(turn.customer_id)
    return contact_choices(contacts, [c.id for c in contacts if c.service_account_ids])


def _unlink_contact(turn: Turn, contact_id: str) -> str:
    contact = _pick_contact(turn, contact_id)
    if contact is None:
        return _gone(turn)
    return "unlink.accounts"


def _unlink_confirm(turn: Turn, yes: bool) -> str:
    return _change_accounts(
        turn,
        yes,
        turn.ports.unassign,
        NP_(
            "Saved. {name} was removed from {n} service account.",
            "Saved. {name} was removed from {n} service accounts.",
        ),
    )


# -- 5. add or remove contacts on ALL service accounts ---------------------------------------------

_ALL_ACTIONS = (
    Choice("add", Msg.of(N_("Add contacts to ALL"))),
    Choice("remove", Msg.of(N_("Remove contacts from ALL"))),
)


def _all_action(turn: Turn, key: str) -> str:
    turn.slots["action"] = key
    return "all.contacts"


def _all_contacts(turn: Turn, ids: list[str]) -> str:
    turn.slots["contacts"] = ids
    return "all.confirm"


def _all_params(turn: Turn) -> dict[str, Any]:
    wanted = {int(i) for i in turn.slots["contacts"]}
    names = Listed(tuple(Literal(c.name) for c in turn.ports.contacts(turn.customer_id) if c.id in wanted))
    count = len(turn.ports.service_accounts(turn.customer_id))
    verb = (
        N_("Add {names} to ALL {n} service accounts?")
        if turn.slots["action"] == "add"
        else N_("Remove {names} from ALL {n} service accounts?")
    )
    if turn.slots["action"] == "remove":
        every = {a.id for a in turn.ports.service_accounts(turn.customer_id)}
        left = _left_without_contacts(turn, wanted, every)
        if left:
            verb = N_("Remove {names} from ALL {n} service accounts? {notice}")
            return {"what": Msg.of(verb, names=names, n=count, notice=_nobody_left(turn, left))}
    return {"what": Msg.of(verb, names=names, n=count)}


def _all_confirm(turn: Turn, yes: bool) -> str:
    if not yes:
        return _not_saved(turn)
    wanted = {int(i) for i in turn.slots["contacts"]}
    contact_ids = [c.id for c in turn.ports.contacts(turn.customer_id) if c.id in wanted]
    account_ids = [a.id for a in turn.ports.service_accounts(turn.customer_id)]
    if turn.slots["action"] == "add":
        turn.ports.assign(turn.customer_id, contact_ids, account_ids)
        return _saved(
            turn,
            NP_(
                "Saved. {n} contact is now on ALL service accounts.",
                "Saved. {n} contacts are now on ALL service accounts.",
            ),
            len(contact_ids),
        )
    turn.ports.unassign(turn.customer_id, contact_ids, account_ids)
    return _saved(
        turn,
        NP_(
            "Saved. {n} contact was removed from ALL service accounts.",
            "Saved. {n} contacts were removed from ALL service accounts.",
        ),
        len(contact_ids),
    )


def _all_contact_options(turn: Turn) -> list[Choice]:
    return contact_choices(turn.ports.contacts(turn.customer_id))


def _confirm(name: str, prompt: str, act: Any, back: str, params: Any, *more: str) -> State:
    return State(
        name=name,
        prompt=prompt,
        params=params,
        parse=parse_yes_no,
        act=act,
        goes_to=(MENU, *more),
        back=back,
        verified=True,
        hint=_CONFIRM_HINT,
        help=_CONFIRM_HELP,
        yes_no=True,
    )


def _accounts_for_contact(operation: str, prompt: str, paged_prompt: str, on: bool) -> State:
    """``{operation}.accounts``: the chosen contact's service accounts it is ``on`` (or not), to pick from."""
    return State(
        name=f"{operation}.accounts",
        prompt=prompt,
        paged_prompt=paged_prompt,
        params=_name,
        options=_accounts_of_contact(on=on),
        multi=True,
        parse=_invalid_pick,
        act=_pick_accounts(f"{operation}.confirm"),
        goes_to=(f"{operation}.confirm",),
        back=f"{operation}.contact",
        verified=True,
        paged=True,
        help=_PICK_HELP,
    )


def _invalid_pick(turn: Turn, text: str) -> Invalid:
    return Invalid(Msg.of(N_("Please type the numbers you want, for example 1 3, 1-3 or ALL.")))


def _accounts(turn: Turn) -> list[Choice]:
    return account_choices(turn.ports.service_accounts(turn.customer_id))


_PICK_HELP = N_(
    "Type the numbers you want, for example 1 3 or 1-3, or the last 4 digits shown, or ALL. "
    "MORE: next page. X: never mind."
)
_NAME_HELP = N_("Type the person's full name, for example Nguyen Van An. 0: back. X: never mind.")
_NAME_PHONE_HELP = N_(
    "Type the person's full name, then the mobile number, for example Nguyen Van An 626 555 0100. X: never mind."
)
_PHONE_HELP = N_("Type a mobile number with its area code, for example (626) 555-0100. 0: back. X: never mind.")
_EMAIL_HELP = N_("Type an email address, or N for no email. 0: back. X: never mind.")
_CONFIRM_HELP = N_("Y: save this change. N: do not save. 0: back. X: never mind.")


def _table() -> tuple[State, ...]:
    return (
        State(
            name=MENU,
            prompt=N_("Alert contacts:"),
            choices=_OPERATIONS,
            act=_operations,
            goes_to=(MENU, "add.name", "link.contact", "edit.contact", "unlink.contact", "all.action", "list.contacts"),
            back="menu",
            verified=True,
        ),
        State(
            name="list.contacts",
            prompt=N_("Contacts. Type a number to edit:"),
            options=_listed_contacts,
            act=_edit_contact,
            goes_to=("edit.field", MENU),
            back=MENU,
            verified=True,
            paged=True,
        ),
        # 1. add
        State(
            name="add.name",
            prompt=N_("Please type the new contact's full name and mobile number. Example: Le Van An 626 555 0100"),
            parse=parse_name_and_phone,
            act=_add_name,
            goes_to=("add.phone", "add.email"),
            back=MENU,
            verified=True,
            free_text=True,
            help=_NAME_PHONE_HELP,
        ),
        State(
            name="add.phone",
            prompt=N_("Mobile number of {name}? Example: (626) 555-0100"),
            params=_name,
            parse=parse_phone,
            act=_add_phone,
            goes_to=("add.email", "add.phone"),
            back="add.name",
            verified=True,
            help=_PHONE_HELP,
        ),
        State(
            name="add.email",
            prompt=N_("Email of {name}? If none, type N."),
            params=_name,
            parse=parse_email,
            act=_add_email,
            goes_to=("add.language",),
            back="add.phone",
            verified=True,
            free_text=True,
            help=_EMAIL_HELP,
        ),
        State(
            name="add.language",
            prompt=N_("In which language should {name} get alerts?"),
            params=_name,
            choices=LANGUAGE_CHOICES,
            act=_add_language,
            goes_to=("add.accounts",),
            back="add.email",
            verified=True,
        ),
        State(
            name="add.accounts",
            prompt=N_("Which service accounts? Example: 1 3 or ALL"),
            paged_prompt=N_("Which service accounts?"),
            params=_name,
            options=_accounts,
            multi=True,
            parse=_invalid_pick,
            act=_pick_accounts("add.confirm"),
            goes_to=("add.confirm",),
            back="add.language",
            verified=True,
            paged=True,
            help=_PICK_HELP,
        ),
        _confirm(
            "add.confirm",
            N_("{what}\nY/N"),
            _add_confirm,
            "add.accounts",
            _add_confirm_params,
            "add.phone",
            "add.accounts",
        ),
        # 2. add an existing contact to other service accounts
        State(
            name="link.contact",
            prompt=N_("Which contact?"),
            options=_all_contact_options,
            act=_link_contact,
            goes_to=("link.accounts", MENU),
            back=MENU,
            verified=True,
            paged=True,
        ),
        _accounts_for_contact(
            "link", N_("Add {name} to which accounts? Example: 1 3 or ALL"), N_("Add {name} to:"), on=False
        ),
        _confirm("link.confirm", N_("Add {name} to {accounts}? Y/N"), _link_confirm, "link.accounts", _accounts_params),
        # 3. edit
        State(
            name="edit.contact",
            prompt=N_("Which contact do you want to edit?"),
            options=_all_contact_options,
            act=_edit_contact,
            goes_to=("edit.field", MENU),
            back=MENU,
            verified=True,
            paged=True,
        ),
        State(
            name="edit.field",
            prompt=N_("What do you want to change for {name}?"),
            params=_name,
            choices=_FIELDS,
            act=_edit_field,
            goes_to=("edit.name", "edit.phone", "edit.email", "edit.language"),
            back="edit.contact",
            verified=True,
        ),
        State(
            name="edit.name",
            prompt=N_("New name for {name}?"),
            params=_name,
            parse=parse_name,
            act=_edit_value,
            goes_to=("edit.confirm", "edit.field", MENU),
            back="edit.field",
            verified=True,
            free_text=True,
            help=_NAME_HELP,
        ),
        State(
            name="edit.phone",
            prompt=N_("New mobile number for {name}? Example: (626) 555-0100"),
            params=_name,
            parse=parse_phone,
            act=_edit_value,
            goes_to=("edit.confirm", "edit.phone", "edit.field", MENU),
            back="edit.field",
            verified=True,
            help=_PHONE_HELP,
        ),
        State(
            name="edit.email",
            prompt=N_("New email for {name}? To remove the email, type N."),
            params=_name,
            parse=parse_new_email,
            act=_edit_value,
            goes_to=("edit.confirm", "edit.field", MENU),
            back="edit.field",
            verified=True,
            free_text=True,
            help=N_("Type the new email address, or N to remove the email. 0: back. X: never mind."),
        ),
        State(
            name="edit.language",
            prompt=N_("In which language should {name} get alerts?"),
            params=_name,
            choices=LANGUAGE_CHOICES,
            act=_edit_value,
            goes_to=("edit.confirm", "edit.field", MENU),
            back="edit.field",
            verified=True,
        ),
        _confirm(
            "edit.confirm",
            N_("{what} Y/N"),
            _edit_confirm,
            "edit.field",
            _edit_confirm_params,
            "edit.confirm",
            "edit.phone",
        ),
        # 4. remove from service accounts
        State(
            name="unlink.contact",
            prompt=N_("Which contact do you want to remove from service accounts?"),
            options=_unlink_contact_options,
            act=_unlink_contact,
            goes_to=("unlink.accounts", MENU),
            back=MENU,
            verified=True,
            paged=True,
        ),
        _accounts_for_contact(
            "unlink", N_("Remove {name} from which accounts? Example: 1 3 or ALL"), N_("Remove {name} from:"), on=True
        ),
        _confirm(
            "unlink.confirm",
            N_("Remove {name} from {accounts}? {notice} Y/N"),
            _unlink_confirm,
            "unlink.accounts",
            _accounts_params,
        ),
        # 5. ALL service accounts
        State(
            name="all.action",
            prompt=N_("ALL service accounts: what would you like to do?"),
            choices=_ALL_ACTIONS,
            act=_all_action,
            goes_to=("all.contacts",),
            back=MENU,
            verified=True,
        ),
        State(
            name="all.contacts",
            prompt=N_("Which contacts? Example: 1 2 or ALL"),
            paged_prompt=N_("Which contacts?"),
            options=_all_contact_options,
            multi=True,
            parse=_invalid_pick,
            act=_all_contacts,
            goes_to=("all.confirm",),
            back="all.action",
            verified=True,
            paged=True,
            help=_PICK_HELP,
        ),
        _confirm("all.confirm", N_("{what} Y/N"), _all_confirm, "all.contacts", _all_params),
    )


# cancelling anything begun in the contacts menu goes back to it, not to the main menu
STATES = tuple(state if state.name == MENU else replace(state, cancel=MENU) for state in _table())
