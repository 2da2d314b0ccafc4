import ape, json
from eth_utils import keccak
def test_explore(accounts, project, chain):
    admin, r1, r2, r3, hosp, pat = accounts[:6]
    E = project.ProviderRegistry.ProviderInvalidThreshold
    print("CONT", E, E.abi, getattr(E, "contract", None))
    try:
        admin.deploy(project.ProviderRegistry, admin, [], 1)
    except Exception as e:
        print("ERR", type(e), repr(e), repr(e.revert_message), repr(e.base_err), e.txn and type(e.txn), e.address)
    reg = admin.deploy(project.ProviderRegistry, admin, [r1, r2, r3], 2)
    print("INST", reg.ProviderInvalidThreshold.contract)
    try:
        reg.applyAsInstitution(7, "x", b"\x02"*33, sender=hosp)
    except Exception as e:
        print("ERR", type(e), repr(e), repr(e.revert_message), repr(e.base_err))
    print("RET", reg.approveInstitution.call(hosp, sender=r1) if False else "")
