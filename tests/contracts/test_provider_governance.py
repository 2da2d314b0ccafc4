"""ProviderRegistry governance: registrars add and remove registrars (``voteRegistrar``) and
change the threshold (``voteThreshold``) by the same k-of-n vote that verifies institutions.

There is no administrator: nobody grants or revokes REGISTRAR_ROLE through AccessControl, a
registrar may renounce only while the threshold stays reachable, there are at most 16
registrars and never fewer than the threshold. Only the votes and approvals of *current*
registrars count: a registrar who leaves takes them along, and one who returns starts a new
term in which its earlier votes do not count.

The deployed fixture has three registrars (``registrars[0..2]``) and a threshold of two.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from eth_abi import encode
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes

from .support import (
    DEFAULT_ADMIN_ROLE,
    REGISTRAR_ROLE,
    THRESHOLD,
    ZERO_ADDRESS,
    Kind,
    Status,
    assert_events,
    reverts,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from ape.api import AccountAPI

NOBODY = HexBytes(keccak(text="MedLedger.NOBODY"))
"""The admin role of REGISTRAR_ROLE, held by nobody."""
OTHER_ROLE = HexBytes(b"\xab" * 32)


def registrar_motion(account: Any, add: bool, round_: int) -> HexBytes:
    """The id of a registrar motion: ``keccak256(abi.encode("registrar", account, add, round))``,
    ``round`` counting the completed motions on that account."""
    address = to_checksum_address(getattr(account, "address", account))
    return HexBytes(
        keccak(encode(["string", "address", "bool", "uint32"], ["registrar", address, add, round_]))
    )


def threshold_motion(threshold: int, round_: int) -> HexBytes:
    """``keccak256(abi.encode("threshold", threshold, round))``, ``round`` counting the
    threshold changes made by vote."""
    return HexBytes(keccak(encode(["string", "uint8", "uint32"], ["threshold", threshold, round_])))


def address_of(label: str) -> str:
    return to_checksum_address(keccak(text=label)[-20:])


def members(registry: Any) -> set[str]:
    return set(registry.getRoleMembers(REGISTRAR_ROLE))


@pytest.fixture
def vote(provider_registry: Any) -> Callable[..., Any]:
    """``vote(account, add, *voters)``: each voter votes on the registrar motion; returns the
    last receipt."""

    def cast(account: Any, add: bool, *voters: AccountAPI) -> Any:
        receipt = None
        for voter in voters:
            receipt = provider_registry.voteRegistrar(account, add, sender=voter)
        return receipt

    return cast


@pytest.fixture
def set_threshold(
    provider_registry: Any, registrars: list[AccountAPI]
) -> Callable[[int, list[AccountAPI] | None], Any]:
    """``set_threshold(threshold, voters=None)``: voters (default: the first ``THRESHOLD``
    registrars) vote for the threshold."""

    def cast(threshold: int, voters: list[AccountAPI] | None = None) -> Any:
        receipt = None
        for voter in voters if voters is not None else registrars[:THRESHOLD]:
            receipt = provider_registry.voteThreshold(threshold, sender=voter)
        return receipt

    return cast


# ============================================================================ voteRegistrar


def test_vote_to_add_below_threshold_counts_the_vote_and_adds_nobody(
    provider_registry: Any, registrars: list[AccountAPI], stranger: AccountAPI
) -> None:
    assert provider_registry.voteRegistrar.call(stranger, True, sender=registrars[0]) is False

    tx = provider_registry.voteRegistrar(stranger, True, sender=registrars[0])

    assert_events(
        tx,
        provider_registry.RegistrarVoted(
            account=stranger, add=True, registrar=registrars[0], votes=1, threshold=THRESHOLD
        ),
    )
    assert not provider_registry.hasRole(REGISTRAR_ROLE, stranger)
    assert members(provider_registry) == {r.address for r in registrars}


def test_vote_to_add_at_threshold_makes_a_registrar_who_may_approve_and_vote(
    provider_registry: Any,
    registrars: list[AccountAPI],
    stranger: AccountAPI,
    doctor: AccountAPI,
    hospital: AccountAPI,
    apply_institution: Callable[..., Any],
) -> None:
    provider_registry.voteRegistrar(stranger, True, sender=registrars[0])
    assert provider_registry.voteRegistrar.call(stranger, True, sender=registrars[2]) is True

    tx = provider_registry.voteRegistrar(stranger, True, sender=registrars[2])

    assert_events(
        tx,
        provider_registry.RegistrarVoted(
            account=stranger, add=True, registrar=registrars[2], votes=2, threshold=THRESHOLD
        ),
        provider_registry.RoleGranted(role=REGISTRAR_ROLE, account=stranger, sender=registrars[2]),
    )
    assert provider_registry.getRoleMembers(REGISTRAR_ROLE) == [
        *(r.address for r in registrars),
        stranger.address,
    ]
    apply_institution(hospital)
    approved = provider_registry.approveInstitution(hospital, sender=stranger)
    assert_events(
        approved,
        provider_registry.InstitutionApproved(
            institution=hospital, registrar=stranger, approvals=1, threshold=THRESHOLD
        ),
    )
    voted = provider_registry.voteRegistrar(doctor, True, sender=stranger)
    assert_events(
        voted,
        provider_registry.RegistrarVoted(
            account=doctor, add=True, registrar=stranger, votes=1, threshold=THRESHOLD
        ),
    )


def test_vote_to_remove_at_threshold_revokes_the_role_and_the_removed_may_no_longer_act(
    provider_registry: Any,
    registrars: list[AccountAPI],
    stranger: AccountAPI,
    hospital: AccountAPI,
    apply_institution: Callable[..., Any],
) -> None:
    first = provider_registry.voteRegistrar(registrars[2], False, sender=registrars[0])
    second = provider_registry.voteRegistrar(registrars[2], False, sender=registrars[1])

    assert_events(
        first,
        provider_registry.RegistrarVoted(
            account=registrars[2], add=False, registrar=registrars[0], votes=1, threshold=2
        ),
    )
    assert_events(
        second,
        provider_registry.RegistrarVoted(
            account=registrars[2], add=False, registrar=registrars[1], votes=2, threshold=2
        ),
        provider_registry.RoleRevoked(
            role=REGISTRAR_ROLE, account=registrars[2], sender=registrars[1]
        ),
    )
    assert members(provider_registry) == {registrars[0].address, registrars[1].address}
    apply_institution(hospital)
    for act in (
        lambda: provider_registry.approveInstitution(hospital, sender=registrars[2]),
        lambda: provider_registry.voteRegistrar(stranger, True, sender=registrars[2]),
        lambda: provider_registry.voteThreshold(1, sender=registrars[2]),
    ):
        with reverts(
            provider_registry.AccessControlUnauthorizedAccount,
            account=registrars[2],
            neededRole=REGISTRAR_ROLE,
        ):
            act()


def test_registrar_may_vote_for_its_own_removal(
    provider_registry: Any, registrars: list[AccountAPI], vote: Callable[..., Any]
) -> None:
    tx = vote(registrars[1], False, registrars[1], registrars[2])
    assert_events(
        tx,
        provider_registry.RegistrarVoted(
            account=registrars[1], add=False, registrar=registrars[2], votes=2, threshold=2
        ),
        provider_registry.RoleRevoked(
            role=REGISTRAR_ROLE, account=registrars[1], sender=registrars[2]
        ),
    )
    assert members(provider_registry) == {registrars[0].address, registrars[2].address}


@pytest.mark.parametrize("add", [True, False], ids=["add", "remove"])
def test_vote_reverts_when_registrar_votes_twice_on_the_motion(
    provider_registry: Any, registrars: list[AccountAPI], stranger: AccountAPI, add: bool
) -> None:
    account = stranger if add else registrars[2]
    provider_registry.voteRegistrar(account, add, sender=registrars[0])
    with reverts(
        provider_registry.ProviderAlreadyVoted,
        motion=registrar_motion(account, add, 0),
        registrar=registrars[0],
    ):
        provider_registry.voteRegistrar(account, add, sender=registrars[0])


@pytest.mark.parametrize(
    ("target", "add"),
    [
        pytest.param("current-registrar", True, id="add-a-current-registrar"),
        pytest.param("voter-itself", True, id="add-the-voter-itself"),
        pytest.param("stranger", False, id="remove-a-non-registrar"),
        pytest.param("removed-registrar", False, id="remove-a-removed-registrar"),
        pytest.param("zero", True, id="add-the-zero-address"),
        pytest.param("zero", False, id="remove-the-zero-address"),
    ],
)
def test_vote_reverts_when_account_cannot_be_added_or_removed(
    provider_registry: Any,
    registrars: list[AccountAPI],
    stranger: AccountAPI,
    vote: Callable[..., Any],
    target: str,
    add: bool,
) -> None:
    if target == "removed-registrar":
        vote(registrars[2], False, registrars[0], registrars[1])
    account = {
        "current-registrar": registrars[1].address,
        "voter-itself": registrars[0].address,
        "stranger": stranger.address,
        "removed-registrar": registrars[2].address,
        "zero": ZERO_ADDRESS,
    }[target]
    with reverts(provider_registry.ProviderInvalidRegistrar, account=account, add=add):
        provider_registry.voteRegistrar(account, add, sender=registrars[0])


@pytest.mark.parametrize("caller", ["deployer", "stranger", "institution", "removed-registrar"])
def test_vote_reverts_when_caller_is_not_a_registrar(
    provider_registry: Any,
    admin: AccountAPI,
    registrars: list[AccountAPI],
    stranger: AccountAPI,
    doctor: AccountAPI,
    verified_institution: Callable[..., AccountAPI],
    vote: Callable[..., Any],
    caller: str,
) -> None:
    sender = {"deployer": admin, "stranger": stranger}.get(caller)
    if caller == "institution":
        sender = verified_institution(Kind.HOSPITAL)
    elif caller == "removed-registrar":
        vote(registrars[2], False, registrars[0], registrars[1])
        sender = registrars[2]
    for act in (
        lambda: provider_registry.voteRegistrar(doctor, True, sender=sender),
        lambda: provider_registry.voteRegistrar(registrars[0], False, sender=sender),
    ):
        with reverts(
            provider_registry.AccessControlUnauthorizedAccount,
            account=sender,
            neededRole=REGISTRAR_ROLE,
        ):
            act()


def test_vote_to_add_reverts_while_sixteen_registrars_serve_and_a_removal_makes_room(
    project: Any, admin: AccountAPI, registrars: list[AccountAPI], stranger: AccountAPI
) -> None:
    voter = registrars[0]
    others = [address_of(f"registrar-{i}") for i in range(15)]
    registry = admin.deploy(project.ProviderRegistry, [voter, *others], 1)
    assert registry.MAX_REGISTRARS() == 16
    assert registry.getRoleMemberCount(REGISTRAR_ROLE) == 16

    with reverts(registry.ProviderInvalidRegistrar, account=stranger, add=True):
        registry.voteRegistrar(stranger, True, sender=voter)

    registry.voteRegistrar(others[0], False, sender=voter)
    tx = registry.voteRegistrar(stranger, True, sender=voter)
    assert_events(
        tx,
        registry.RegistrarVoted(account=stranger, add=True, registrar=voter, votes=1, threshold=1),
        registry.RoleGranted(role=REGISTRAR_ROLE, account=stranger, sender=voter),
    )
    assert registry.getRoleMemberCount(REGISTRAR_ROLE) == 16


def test_vote_to_add_reaches_sixteen_registrars_by_votes_and_stops_there(
    provider_registry: Any, registrars: list[AccountAPI], set_threshold: Callable[..., Any]
) -> None:
    set_threshold(1)
    added = [address_of(f"new-registrar-{i}") for i in range(14)]
    for account in added[:13]:
        provider_registry.voteRegistrar(account, True, sender=registrars[1])
    assert provider_registry.getRoleMemberCount(REGISTRAR_ROLE) == 16
    with reverts(provider_registry.ProviderInvalidRegistrar, account=added[13], add=True):
        provider_registry.voteRegistrar(added[13], True, sender=registrars[1])


def test_removal_reverts_when_it_would_leave_fewer_registrars_than_the_threshold(
    provider_registry: Any,
    registrars: list[AccountAPI],
    vote: Callable[..., Any],
    set_threshold: Callable[..., Any],
) -> None:
    vote(registrars[2], False, registrars[0], registrars[1])  # two left, threshold two
    first = provider_registry.voteRegistrar(registrars[1], False, sender=registrars[0])
    assert_events(
        first,
        provider_registry.RegistrarVoted(
            account=registrars[1], add=False, registrar=registrars[0], votes=1, threshold=2
        ),
    )

    with reverts(provider_registry.ProviderInvalidThreshold, threshold=2, registrars=1):
        provider_registry.voteRegistrar(registrars[1], False, sender=registrars[1])
    assert members(provider_registry) == {registrars[0].address, registrars[1].address}

    # Lower the threshold first: then the removal goes through, and the earlier vote counts.
    set_threshold(1, [registrars[0], registrars[1]])
    tx = provider_registry.voteRegistrar(registrars[1], False, sender=registrars[1])
    assert_events(
        tx,
        provider_registry.RegistrarVoted(
            account=registrars[1], add=False, registrar=registrars[1], votes=2, threshold=1
        ),
        provider_registry.RoleRevoked(
            role=REGISTRAR_ROLE, account=registrars[1], sender=registrars[1]
        ),
    )
    assert members(provider_registry) == {registrars[0].address}


def test_last_registrar_cannot_be_removed(
    provider_registry: Any,
    registrars: list[AccountAPI],
    vote: Callable[..., Any],
    set_threshold: Callable[..., Any],
) -> None:
    set_threshold(1)
    vote(registrars[2], False, registrars[0])
    vote(registrars[1], False, registrars[0])
    with reverts(provider_registry.ProviderInvalidThreshold, threshold=1, registrars=0):
        provider_registry.voteRegistrar(registrars[0], False, sender=registrars[0])
    assert members(provider_registry) == {registrars[0].address}


def test_votes_of_a_removed_registrar_stop_counting_on_registrar_motions(
    provider_registry: Any,
    registrars: list[AccountAPI],
    stranger: AccountAPI,
    vote: Callable[..., Any],
) -> None:
    vote(stranger, True, registrars[2])
    vote(registrars[2], False, registrars[0], registrars[1])

    tx = provider_registry.voteRegistrar(stranger, True, sender=registrars[0])

    assert_events(
        tx,
        provider_registry.RegistrarVoted(
            account=stranger, add=True, registrar=registrars[0], votes=1, threshold=2
        ),
    )
    assert not provider_registry.hasRole(REGISTRAR_ROLE, stranger)
    vote(stranger, True, registrars[1])
    assert provider_registry.hasRole(REGISTRAR_ROLE, stranger)


def test_completed_motion_does_not_carry_its_votes_to_the_next_motion_on_the_account(
    provider_registry: Any,
    registrars: list[AccountAPI],
    stranger: AccountAPI,
    vote: Callable[..., Any],
) -> None:
    vote(stranger, True, registrars[0], registrars[1])  # added (motion round 0 -> 1)
    vote(stranger, False, registrars[0], registrars[1])  # removed (round 1 -> 2)

    again = provider_registry.voteRegistrar(stranger, True, sender=registrars[0])

    assert_events(
        again,
        provider_registry.RegistrarVoted(
            account=stranger, add=True, registrar=registrars[0], votes=1, threshold=2
        ),
    )
    assert not provider_registry.hasRole(REGISTRAR_ROLE, stranger)
    with reverts(
        provider_registry.ProviderAlreadyVoted,
        motion=registrar_motion(stranger, True, 2),
        registrar=registrars[0],
    ):
        provider_registry.voteRegistrar(stranger, True, sender=registrars[0])


def test_readded_registrar_starts_a_new_term_in_which_its_earlier_votes_do_not_count(
    provider_registry: Any,
    registrars: list[AccountAPI],
    stranger: AccountAPI,
    hospital: AccountAPI,
    apply_institution: Callable[..., Any],
    vote: Callable[..., Any],
) -> None:
    returning = registrars[2]
    apply_institution(hospital)
    provider_registry.approveInstitution(hospital, sender=returning)
    vote(stranger, True, returning)
    provider_registry.voteThreshold(3, sender=returning)
    assert provider_registry.approvalsOf(hospital) == 1

    vote(returning, False, registrars[0], registrars[1])
    assert provider_registry.approvalsOf(hospital) == 0
    vote(returning, True, registrars[0], registrars[1])
    assert provider_registry.hasRole(REGISTRAR_ROLE, returning)
    assert provider_registry.approvalsOf(hospital) == 0  # its approval was from the last term

    # Its earlier votes do not count for anybody's motion ...
    on_stranger = provider_registry.voteRegistrar(stranger, True, sender=registrars[0])
    on_threshold = provider_registry.voteThreshold(3, sender=registrars[0])
    assert_events(
        on_stranger,
        provider_registry.RegistrarVoted(
            account=stranger, add=True, registrar=registrars[0], votes=1, threshold=2
        ),
    )
    assert_events(
        on_threshold,
        provider_registry.ThresholdVoted(threshold=3, registrar=registrars[0], votes=1, needed=2),
    )
    # ... and it may vote again in its new term, as a fresh vote.
    approved = provider_registry.approveInstitution(hospital, sender=returning)
    assert_events(
        approved,
        provider_registry.InstitutionApproved(
            institution=hospital, registrar=returning, approvals=1, threshold=2
        ),
    )
    added = provider_registry.voteRegistrar(stranger, True, sender=returning)
    assert_events(
        added,
        provider_registry.RegistrarVoted(
            account=stranger, add=True, registrar=returning, votes=2, threshold=2
        ),
        provider_registry.RoleGranted(role=REGISTRAR_ROLE, account=stranger, sender=returning),
    )


# ============================================================================ approvals and terms


def test_approvals_of_a_removed_registrar_stop_counting_and_verification_needs_fresh_votes(
    provider_registry: Any,
    registrars: list[AccountAPI],
    hospital: AccountAPI,
    apply_institution: Callable[..., Any],
    vote: Callable[..., Any],
) -> None:
    apply_institution(hospital)
    provider_registry.approveInstitution(hospital, sender=registrars[2])
    assert provider_registry.approvalsOf(hospital) == 1

    vote(registrars[2], False, registrars[0], registrars[1])

    assert provider_registry.approvalsOf(hospital) == 0
    first = provider_registry.approveInstitution(hospital, sender=registrars[0])
    assert_events(
        first,
        provider_registry.InstitutionApproved(
            institution=hospital, registrar=registrars[0], approvals=1, threshold=2
        ),
    )
    assert provider_registry.participant(hospital).status == Status.PENDING
    second = provider_registry.approveInstitution(hospital, sender=registrars[1])
    assert_events(
        second,
        provider_registry.InstitutionApproved(
            institution=hospital, registrar=registrars[1], approvals=2, threshold=2
        ),
        provider_registry.InstitutionVerified(institution=hospital),
    )


def test_approvals_of_a_removed_registrar_stop_counting_for_reinstatement(
    provider_registry: Any,
    registrars: list[AccountAPI],
    verified_institution: Callable[..., AccountAPI],
    suspend: Callable[..., Any],
    vote: Callable[..., Any],
) -> None:
    hospital = verified_institution(Kind.HOSPITAL)
    suspend(hospital)
    provider_registry.approveInstitution(hospital, sender=registrars[0])
    vote(registrars[0], False, registrars[1], registrars[2])

    tx = provider_registry.approveInstitution(hospital, sender=registrars[1])

    assert_events(
        tx,
        provider_registry.InstitutionApproved(
            institution=hospital, registrar=registrars[1], approvals=1, threshold=2
        ),
    )
    assert provider_registry.participant(hospital).status == Status.SUSPENDED


def test_approvals_of_a_renouncing_registrar_stop_counting(
    provider_registry: Any,
    registrars: list[AccountAPI],
    hospital: AccountAPI,
    apply_institution: Callable[..., Any],
) -> None:
    apply_institution(hospital)
    provider_registry.approveInstitution(hospital, sender=registrars[1])
    provider_registry.renounceRole(REGISTRAR_ROLE, registrars[1], sender=registrars[1])

    assert provider_registry.approvalsOf(hospital) == 0
    tx = provider_registry.approveInstitution(hospital, sender=registrars[0])
    assert_events(
        tx,
        provider_registry.InstitutionApproved(
            institution=hospital, registrar=registrars[0], approvals=1, threshold=2
        ),
    )


def test_added_registrar_approval_counts_with_the_earlier_approvals_of_current_registrars(
    provider_registry: Any,
    registrars: list[AccountAPI],
    stranger: AccountAPI,
    hospital: AccountAPI,
    apply_institution: Callable[..., Any],
    vote: Callable[..., Any],
    set_threshold: Callable[..., Any],
) -> None:
    apply_institution(hospital)
    vote(stranger, True, registrars[0], registrars[1])
    set_threshold(4, [registrars[0], registrars[1]])
    for registrar in registrars:
        provider_registry.approveInstitution(hospital, sender=registrar)
    assert provider_registry.approvalsOf(hospital) == 3

    tx = provider_registry.approveInstitution(hospital, sender=stranger)

    assert_events(
        tx,
        provider_registry.InstitutionApproved(
            institution=hospital, registrar=stranger, approvals=4, threshold=4
        ),
        provider_registry.InstitutionVerified(institution=hospital),
    )


# ============================================================================ voteThreshold


def test_vote_threshold_below_needed_counts_the_vote_and_changes_nothing(
    provider_registry: Any, registrars: list[AccountAPI]
) -> None:
    assert provider_registry.voteThreshold.call(3, sender=registrars[1]) is False
    tx = provider_registry.voteThreshold(3, sender=registrars[1])
    assert_events(
        tx,
        provider_registry.ThresholdVoted(threshold=3, registrar=registrars[1], votes=1, needed=2),
    )
    assert provider_registry.approvalThreshold() == THRESHOLD


@pytest.mark.parametrize("threshold", [1, 2, 3])
def test_vote_threshold_at_needed_changes_the_threshold_and_emits_old_and_new(
    provider_registry: Any, registrars: list[AccountAPI], threshold: int
) -> None:
    provider_registry.voteThreshold(threshold, sender=registrars[2])
    assert provider_registry.voteThreshold.call(threshold, sender=registrars[0]) is True

    tx = provider_registry.voteThreshold(threshold, sender=registrars[0])

    assert_events(
        tx,
        provider_registry.ThresholdVoted(
            threshold=threshold, registrar=registrars[0], votes=2, needed=2
        ),
        provider_registry.ApprovalThresholdChanged(
            previousThreshold=THRESHOLD, newThreshold=threshold
        ),
    )
    assert provider_registry.approvalThreshold() == threshold


def test_raised_threshold_governs_the_next_votes(
    provider_registry: Any,
    registrars: list[AccountAPI],
    stranger: AccountAPI,
    set_threshold: Callable[..., Any],
) -> None:
    set_threshold(3)
    provider_registry.voteRegistrar(stranger, True, sender=registrars[0])
    second = provider_registry.voteRegistrar(stranger, True, sender=registrars[1])
    assert_events(
        second,
        provider_registry.RegistrarVoted(
            account=stranger, add=True, registrar=registrars[1], votes=2, threshold=3
        ),
    )
    assert not provider_registry.hasRole(REGISTRAR_ROLE, stranger)
    provider_registry.voteThreshold(1, sender=registrars[0])
    lowered = provider_registry.voteThreshold(1, sender=registrars[1])
    assert_events(
        lowered,
        provider_registry.ThresholdVoted(threshold=1, registrar=registrars[1], votes=2, needed=3),
    )
    assert provider_registry.approvalThreshold() == 3


@pytest.mark.parametrize("threshold", [0, 4, 255], ids=["zero", "one-above", "max-uint8"])
def test_vote_threshold_reverts_when_zero_or_above_registrar_count(
    provider_registry: Any, registrars: list[AccountAPI], threshold: int
) -> None:
    with reverts(provider_registry.ProviderInvalidThreshold, threshold=threshold, registrars=3):
        provider_registry.voteThreshold(threshold, sender=registrars[0])


def test_vote_threshold_reverts_when_registrar_votes_twice(
    provider_registry: Any, registrars: list[AccountAPI]
) -> None:
    provider_registry.voteThreshold(1, sender=registrars[2])
    with reverts(
        provider_registry.ProviderAlreadyVoted,
        motion=threshold_motion(1, 0),
        registrar=registrars[2],
    ):
        provider_registry.voteThreshold(1, sender=registrars[2])


@pytest.mark.parametrize("caller", ["deployer", "stranger"])
def test_vote_threshold_reverts_when_caller_is_not_a_registrar(
    provider_registry: Any, admin: AccountAPI, stranger: AccountAPI, caller: str
) -> None:
    sender = admin if caller == "deployer" else stranger
    with reverts(
        provider_registry.AccessControlUnauthorizedAccount,
        account=sender,
        neededRole=REGISTRAR_ROLE,
    ):
        provider_registry.voteThreshold(1, sender=sender)


def test_threshold_votes_do_not_carry_over_a_threshold_change(
    provider_registry: Any, registrars: list[AccountAPI], set_threshold: Callable[..., Any]
) -> None:
    provider_registry.voteThreshold(3, sender=registrars[0])
    set_threshold(1, [registrars[1], registrars[2]])  # threshold round 0 -> 1

    tx = provider_registry.voteThreshold(3, sender=registrars[0])

    assert_events(
        tx,
        provider_registry.ThresholdVoted(threshold=3, registrar=registrars[0], votes=1, needed=1),
        provider_registry.ApprovalThresholdChanged(previousThreshold=1, newThreshold=3),
    )
    assert provider_registry.approvalThreshold() == 3


def test_threshold_votes_of_a_removed_registrar_stop_counting(
    provider_registry: Any, registrars: list[AccountAPI], vote: Callable[..., Any]
) -> None:
    provider_registry.voteThreshold(1, sender=registrars[2])
    vote(registrars[2], False, registrars[0], registrars[1])

    tx = provider_registry.voteThreshold(1, sender=registrars[0])

    assert_events(
        tx,
        provider_registry.ThresholdVoted(threshold=1, registrar=registrars[0], votes=1, needed=2),
    )
    assert provider_registry.approvalThreshold() == THRESHOLD


def test_vote_threshold_reverts_when_registrars_were_removed_below_the_proposal(
    provider_registry: Any, registrars: list[AccountAPI], vote: Callable[..., Any]
) -> None:
    provider_registry.voteThreshold(3, sender=registrars[0])
    vote(registrars[2], False, registrars[0], registrars[1])
    with reverts(provider_registry.ProviderInvalidThreshold, threshold=3, registrars=2):
        provider_registry.voteThreshold(3, sender=registrars[1])


# ============================================================================ AccessControl


@pytest.mark.parametrize("caller", ["deployer", "registrar", "stranger"])
@pytest.mark.parametrize("action", ["grantRole", "revokeRole"])
def test_nobody_grants_or_revokes_the_registrar_role_directly(
    provider_registry: Any,
    admin: AccountAPI,
    registrars: list[AccountAPI],
    stranger: AccountAPI,
    action: str,
    caller: str,
) -> None:
    sender = {"deployer": admin, "registrar": registrars[0], "stranger": stranger}[caller]
    target = stranger if action == "grantRole" else registrars[2]
    with reverts(
        provider_registry.AccessControlUnauthorizedAccount, account=sender, neededRole=NOBODY
    ):
        getattr(provider_registry, action)(REGISTRAR_ROLE, target, sender=sender)
    assert members(provider_registry) == {r.address for r in registrars}


@pytest.mark.parametrize("role", ["default-admin", "nobody", "other"])
@pytest.mark.parametrize("caller", ["deployer", "registrar"])
def test_nobody_can_take_an_admin_role_to_grant_registrars(
    provider_registry: Any,
    admin: AccountAPI,
    registrars: list[AccountAPI],
    role: str,
    caller: str,
) -> None:
    # Every other role's admin is DEFAULT_ADMIN_ROLE, which nobody holds.
    sender = admin if caller == "deployer" else registrars[0]
    wanted = {"default-admin": DEFAULT_ADMIN_ROLE, "nobody": NOBODY, "other": OTHER_ROLE}[role]
    assert provider_registry.getRoleAdmin(wanted) == DEFAULT_ADMIN_ROLE
    with reverts(
        provider_registry.AccessControlUnauthorizedAccount,
        account=sender,
        neededRole=DEFAULT_ADMIN_ROLE,
    ):
        provider_registry.grantRole(wanted, sender, sender=sender)


def test_renounce_revokes_the_role_while_registrars_stay_at_or_above_threshold(
    provider_registry: Any, registrars: list[AccountAPI]
) -> None:
    tx = provider_registry.renounceRole(REGISTRAR_ROLE, registrars[1], sender=registrars[1])
    assert_events(
        tx,
        provider_registry.RoleRevoked(
            role=REGISTRAR_ROLE, account=registrars[1], sender=registrars[1]
        ),
    )
    assert members(provider_registry) == {registrars[0].address, registrars[2].address}


def test_renounce_reverts_when_registrars_would_drop_below_threshold(
    provider_registry: Any, registrars: list[AccountAPI], set_threshold: Callable[..., Any]
) -> None:
    set_threshold(3)
    with reverts(provider_registry.ProviderInvalidThreshold, threshold=3, registrars=2):
        provider_registry.renounceRole(REGISTRAR_ROLE, registrars[1], sender=registrars[1])
    assert provider_registry.hasRole(REGISTRAR_ROLE, registrars[1])


def test_renounce_reverts_when_confirmation_is_not_the_caller(
    provider_registry: Any, registrars: list[AccountAPI]
) -> None:
    with reverts(provider_registry.AccessControlBadConfirmation):
        provider_registry.renounceRole(REGISTRAR_ROLE, registrars[0], sender=registrars[1])


def test_renounce_by_a_non_registrar_changes_nothing_and_emits_nothing(
    provider_registry: Any,
    registrars: list[AccountAPI],
    stranger: AccountAPI,
    set_threshold: Callable[..., Any],
) -> None:
    set_threshold(3)  # at the threshold: the guard must not count a non-member as a loss
    tx = provider_registry.renounceRole(REGISTRAR_ROLE, stranger, sender=stranger)
    assert_events(tx)
    assert members(provider_registry) == {r.address for r in registrars}


def test_renounced_registrar_is_readded_by_vote_in_a_new_term(
    provider_registry: Any,
    registrars: list[AccountAPI],
    hospital: AccountAPI,
    apply_institution: Callable[..., Any],
    vote: Callable[..., Any],
) -> None:
    apply_institution(hospital)
    provider_registry.approveInstitution(hospital, sender=registrars[2])
    provider_registry.renounceRole(REGISTRAR_ROLE, registrars[2], sender=registrars[2])
    vote(registrars[2], True, registrars[0], registrars[1])
    assert provider_registry.hasRole(REGISTRAR_ROLE, registrars[2])
    assert provider_registry.approvalsOf(hospital) == 0

    tx = provider_registry.approveInstitution(hospital, sender=registrars[2])

    assert_events(
        tx,
        provider_registry.InstitutionApproved(
            institution=hospital, registrar=registrars[2], approvals=1, threshold=2
        ),
    )
