import ape
def test_explore(accounts, project, chain):
    admin, r1, r2, r3, hosp, pat = accounts[:6]
    reg = admin.deploy(project.ProviderRegistry, admin, [r1, r2, r3], 2)
    rr = admin.deploy(project.RecordRegistry, reg)
    try:
        rr.getRecord(b"\x01"*32)
    except Exception as e:
        print("ERR", type(e), repr(e.base_err), type(e.base_err), getattr(e.base_err,"args",None), getattr(e.base_err, "data", None), e.revert_message)
    w3 = chain.provider.web3
    try:
        w3.eth.call({"to": rr.address, "data": rr.getRecord.as_transaction(b"\x01"*32).data.hex()})
    except Exception as e:
        print("RAW", type(e), e.args)
