// Hardhat Network as a second EVM for MedLedger's tests (tests/package/test_second_evm.py):
// `hardhat node --config tools/hardhat/hardhat.config.js --hostname 127.0.0.1 --port N`.
// Only the node is used: nothing is compiled here (the package ships its own artifacts).
// The settings mirror the devnet's (src/medledger/chain/devnet.py): chain id 31337 (another
// from MEDLEDGER_HARDHAT_CHAIN_ID, to stand for a chain that is not a devnet), the standard
// test mnemonic's first 20 accounts, a 300,000,000 block gas limit, a block per transaction;
// the hardfork is Cancun, the EVM the contracts are compiled for.
module.exports = {
  networks: {
    hardhat: {
      chainId: Number(process.env.MEDLEDGER_HARDHAT_CHAIN_ID || 31337),
      hardfork: "cancun",
      blockGasLimit: 300_000_000,
      accounts: {
        mnemonic: "test test test test test test test test test test test junk",
        path: "m/44'/60'/0'/0",
        count: 20,
        accountsBalance: "10000000000000000000000",
      },
      mining: { auto: true },
    },
  },
  paths: { sources: "./sources", cache: "./.cache", artifacts: "./.cache/artifacts" },
};
