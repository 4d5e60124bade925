"""Cases: customer calls run concurrently, the four witnesses joined into call records."""

from qa.cases.checks import Expectation, judge
from qa.cases.customers import CallSpec
from qa.cases.runner import Session
from qa.record import CallRecord, CallRecordWriter, read_records

__all__ = ["CallRecord", "CallRecordWriter", "CallSpec", "Expectation", "Session", "judge", "read_records"]
