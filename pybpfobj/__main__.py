from pybpfobj.cli.main import entry

entry()
