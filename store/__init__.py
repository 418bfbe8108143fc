"""The bottom layer of kvwatch: the database and everything that reads or writes it.

`store` imports neither `crawler` nor `notifier`.
"""
